-- bench/api/create_delete.lua: a create/delete cycle for wrk.
--
--   wrk -t2 -c64 -d15s --latency -s bench/api/create_delete.lua http://HOST:PORT [-- PREFIX]
--
-- Requests alternate POST /api/v1.0/clusters (a fresh name) and DELETE
-- /api/v1.0/clusters/NAME of a name whose POST has been answered 201, so a
-- DELETE never overtakes its POST. wrk's Lua API does not say which connection
-- a response belongs to, so the names created in a thread go into that
-- thread's queue (response() reads the name back from the 201 body) and the
-- next request of any connection of the thread deletes the oldest one; with
-- every connection waiting for its answer before it sends again, the requests
-- alternate POST, DELETE, POST, ... and each name is POSTed once and DELETEd
-- once. Names are <prefix><thread>x<n> (prefix "c" unless given, one
-- lower-case letter: give each wrk run its own): unique per run, thread and
-- counter, and valid cluster names (^[a-z][a-z0-9]{0,15}$).

local threads = {}
local nthreads = 0

function setup(thread)
   nthreads = nthreads + 1
   thread:set("tid", nthreads)
   table.insert(threads, thread)
end

function init(args)
   prefix = args[1] or "c"
   assert(string.match(prefix, "^[a-z]$"), "PREFIX must be one lower-case letter")
   n = 0                  -- names made by this thread
   queue, head, tail = {}, 1, 0   -- created names waiting for their DELETE
   posts, deletes = 0, 0  -- requests sent
   created, deleted = 0, 0 -- 201 to a POST, 200 {"deleted": ...} to a DELETE
   bad = 0                -- any other answer
   bad_sample = ""        -- the first of them, for the report
   post_headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
end

function request()
   if head <= tail then
      local name = queue[head]
      queue[head] = nil
      head = head + 1
      deletes = deletes + 1
      return wrk.format("DELETE", "/api/v1.0/clusters/" .. name)
   end
   n = n + 1
   posts = posts + 1
   local name = prefix .. tid .. "x" .. n
   return wrk.format("POST", "/api/v1.0/clusters", post_headers,
                     "name=" .. name .. "&provider=aws&type=mesos")
end

function response(status, headers, body)
   if status == 201 then
      local name = body and string.match(body, '"name"%s*:%s*"(' .. prefix .. '%d+x%d+)"')
      if name then
         created = created + 1
         tail = tail + 1
         queue[tail] = name
         return
      end
   elseif status == 200 and body and string.find(body, '"deleted"', 1, true) then
      deleted = deleted + 1
      return
   end
   bad = bad + 1
   if bad_sample == "" then
      bad_sample = status .. " " .. string.sub(body or "", 1, 200)
   end
end

function done(summary, latency, requests)
   local t = { posts = 0, deletes = 0, created = 0, deleted = 0, bad = 0 }
   local sample = ""
   for _, thread in ipairs(threads) do
      for k, _ in pairs(t) do
         t[k] = t[k] + (thread:get(k) or 0)
      end
      local s = thread:get("bad_sample")
      if sample == "" and s and s ~= "" then sample = s end
   end
   -- one line the harness parses
   io.write(string.format("CYCLE posts=%d deletes=%d created=%d deleted=%d bad=%d\n",
                          t.posts, t.deletes, t.created, t.deleted, t.bad))
   if sample ~= "" then
      io.write("CYCLE first unexpected answer: " .. sample .. "\n")
   end
end
