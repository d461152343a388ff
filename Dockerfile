# One Debian 12 image with every Dexter service. The command picks the
# service: `api`, `scheduler`, `aws-worker`, … (or `dexter-api`, …), `api-cert`
# for the api's HTTPS certificate, `run` for the whole system in one container
# (scripts/run.sh), anything else is executed as given. See docker-compose.yml.

# ---- build: the packages of scripts/packages.txt, then `make services` ----
FROM debian:12 AS build
WORKDIR /src
COPY scripts/packages.txt scripts/install-deps.sh scripts/
RUN DEXTER_DEPS=build bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY Makefile ./
COPY common/ common/
COPY proto/ proto/
COPY services/ services/
# The api answers docs/openapi.yaml (GET /api/v1.0/openapi.json), built in.
COPY docs/openapi.yaml docs/
COPY scripts/openapi-embed.py scripts/
RUN make -j"$(nproc)" services
# The runtime needs of what was built: the Debian package of every shared
# library the binaries link against (the runtime halves of packages.txt's
# -dev packages), plus packages.txt's non-build tools (redis, openssl, curl).
RUN set -eu; \
    for lib in $(ldd build/bin/dexter-* | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u); do \
        dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null \
            || dpkg -S "${lib#/usr}" 2>/dev/null || dpkg -S "/usr$lib" \
            || { echo "no package owns $lib" >&2; exit 1; }; \
    done | cut -d: -f1 | sort -u > runtime-packages.txt; \
    sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' scripts/packages.txt \
        | grep -Ev -- '-dev$|^(gcc|make|pkg-config|python3.*)$' >> runtime-packages.txt; \
    sort -u -o runtime-packages.txt runtime-packages.txt; \
    cat runtime-packages.txt

# ---- runtime ----
FROM debian:12
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /src/runtime-packages.txt /tmp/runtime-packages.txt
# policy-rc.d: installing redis-server must not try to start a system Redis.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends ca-certificates tini $(cat /tmp/runtime-packages.txt) \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d /tmp/runtime-packages.txt
COPY --from=build /src/build/bin/ /opt/dexter/bin/
COPY scripts/run.sh /opt/dexter/scripts/run.sh
# dexter-api-cert (the command `api-cert`): the api's certificate for HTTPS,
# made on first start in the volumes compose gives it (docker-compose.yml).
RUN printf '%s\n' \
      '#!/bin/sh' \
      '# dexter-api-cert [TLS_DIR [CA_DIR [NAMES]]]: the HTTPS certificate of the api.' \
      '# First run: a CA in CA_DIR (its key stays there), and in TLS_DIR ca.pem (what' \
      '# clients trust: curl --cacert), api.pem and api.key (mode 0600) for NAMES, the' \
      '# subjectAltName. Later runs keep them, but issue a new api.pem when the one' \
      '# this CA signed has less than 30 days left (then send the api SIGHUP). A' \
      '# certificate of another CA put in TLS_DIR is left as it is.' \
      'set -eu' \
      'tls=${1:-/etc/dexter/tls}' \
      'ca=${2:-/etc/dexter/ca}' \
      'names=${3:-DNS:localhost,IP:127.0.0.1,DNS:api}' \
      'ours() { openssl verify -no_check_time -CAfile "$ca/ca.pem" "$tls/api.pem" >/dev/null 2>&1; }' \
      'if [ -s "$tls/api.pem" ] && { ! ours || openssl x509 -checkend 2592000 -noout -in "$tls/api.pem" >/dev/null; }; then echo "dexter-api-cert: keeping $tls/api.pem" >&2; exit 0; fi' \
      'umask 077' \
      'key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }' \
      'if [ ! -s "$ca/ca.key" ]; then key "$ca/ca.key"; openssl req -x509 -new -key "$ca/ca.key" -days 3650 -subj "/CN=Dexter API CA" -out "$ca/ca.pem"; fi' \
      'key "$ca/api.key"' \
      'openssl req -new -key "$ca/api.key" -subj "/CN=dexter-api" -out "$ca/api.csr"' \
      'printf "subjectAltName=%s\nextendedKeyUsage=serverAuth\n" "$names" > "$ca/api.ext"' \
      'openssl x509 -req -in "$ca/api.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -CAcreateserial -days 825 -extfile "$ca/api.ext" -out "$ca/api.pem"' \
      'cp "$ca/ca.pem" "$tls/ca.pem"' \
      'chmod 0644 "$tls/ca.pem" "$ca/api.pem"' \
      'mv "$ca/api.key" "$tls/api.key"' \
      'mv "$ca/api.pem" "$tls/api.pem"' \
      'rm -f "$ca/api.csr" "$ca/api.ext"' \
      'echo "dexter-api-cert: made $tls/api.pem for $names; clients trust $tls/ca.pem" >&2' \
      > /opt/dexter/bin/dexter-api-cert \
 && chmod 0755 /opt/dexter/bin/dexter-api-cert
RUN printf '%s\n' \
      '#!/bin/sh' \
      '# Chooses the Dexter service by the first argument.' \
      'case "${1:-}" in' \
      '  "") echo "usage: api | api-cert | scheduler | aws-worker | azure-worker | vpn | run | COMMAND [ARG...]" >&2; exit 64 ;;' \
      '  run) shift; exec /opt/dexter/scripts/run.sh "$@" ;;' \
      '  dexter-*) svc=${1#dexter-} ;;' \
      '  *) svc=$1 ;;' \
      'esac' \
      'if [ -x "/opt/dexter/bin/dexter-$svc" ]; then shift; exec "/opt/dexter/bin/dexter-$svc" "$@"; fi' \
      'exec "$@"' > /usr/local/bin/dexter-entrypoint \
 && chmod 0755 /usr/local/bin/dexter-entrypoint \
 && useradd --system --home-dir /var/lib/dexter --shell /usr/sbin/nologin dexter \
 && mkdir -p /var/lib/dexter /etc/dexter/tls /etc/dexter/ca /etc/dexter/curve \
 && chown dexter:dexter /var/lib/dexter /etc/dexter/tls /etc/dexter/ca /etc/dexter/curve \
 && chmod 0700 /var/lib/dexter /etc/dexter/tls /etc/dexter/ca /etc/dexter/curve
ENV PATH=/opt/dexter/bin:$PATH \
    DEXTER_BIN_DIR=/opt/dexter/bin \
    DEXTER_DATA_DIR=/var/lib/dexter
USER dexter
WORKDIR /var/lib/dexter
VOLUME /var/lib/dexter
EXPOSE 5555
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/dexter-entrypoint"]
CMD ["run"]
