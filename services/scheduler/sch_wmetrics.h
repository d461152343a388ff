/*  sch_wmetrics: the workers' metrics as the scheduler keeps them, for
    metrics.get (docs/metrics.md).

    Each worker sends its process's cumulative counters and histograms in
    its heartbeats (`metrics`, proto/PROTOCOL.md). They are kept by worker
    name (host:pid), not by connection, so a worker that reconnects goes
    on where it was. Totals never go down while the scheduler runs:
      - a worker whose values go down (or lose a sample) restarted under
        the same name: what it had counted is kept as its base, and its
        new values count on top of it;
      - a worker not heard from for SCH_WMETRICS_KEEP_MS (gone, or sending
        no metrics) is folded into the totals of the departed and
        forgotten; a worker that comes back later under the same name
        counts its values again from there, which may count them twice.
    A scheduler that restarts starts every total from zero, which
    Prometheus reads as a counter reset. */
#ifndef SCH_WMETRICS_H
#define SCH_WMETRICS_H

#include <stdint.h>
#include <jansson.h>

#define SCH_WMETRICS_KEEP_MS  (10 * 60 * 1000)
#define SCH_WMETRICS_MAX_KEYS 4096      /* samples taken of one worker */
#define SCH_WMETRICS_MAX_KEY  512       /* bytes of one sample's text */

typedef struct sch_wmetrics sch_wmetrics_t;

sch_wmetrics_t *sch_wmetrics_new (void);
void sch_wmetrics_destroy (sch_wmetrics_t **self_p);

/*  The metrics of a heartbeat of worker name (borrowed) at now_ms
    (dx_mono_ms). A map that is not as the protocol says (more than
    SCH_WMETRICS_MAX_KEYS samples, a text not starting with `dexter_` or
    longer than SCH_WMETRICS_MAX_KEY, a value that is not a finite number
    >= 0) is ignored whole. 0, or -1 when ignored or memory is short. */
int sch_wmetrics_update (sch_wmetrics_t *self, const char *name, const json_t *metrics,
                         int64_t now_ms);

/*  The sum of every worker's samples and the departed's (caller owns),
    after folding the workers silent since now_ms - SCH_WMETRICS_KEEP_MS.
    NULL when memory is short. */
json_t *sch_wmetrics_sums (sch_wmetrics_t *self, int64_t now_ms);

#endif
