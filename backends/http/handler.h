// The workload's request handler: a plain function from request to response, called the same
// way (by the codec) in every model, so that only the concurrency model differs between rows.
#pragma once
#include "backends/http/message.h"

namespace cb::http {

// Routes:
//   GET|HEAD /, /plaintext  200 text/plain "Hello, world!"
//   GET|HEAD /json          200 application/json {"message":"Hello, World!"}
//   GET|HEAD /spin?us=N     burns N microseconds of this thread's CPU (N <= kMaxSpinUs), then hello
//   GET|HEAD /sleep?ms=N    blocks this thread for N milliseconds (N <= kMaxSleepMs), then hello
//   GET|HEAD /bytes?n=N     N bytes of 'x' (N <= kMaxBytesBody)
// A missing, malformed or out-of-range N is 400; other methods 405; other paths 404.
// May block or burn CPU (that is the point of /sleep and /spin); never allocates.
Response handle(const Request& req);

// Calibrates /spin's busy loop against this thread's CPU clock. Called once at start-up (by
// cbench-server's main) so that the first requests do not pay for it; handle() calls it lazily
// otherwise. Thread-safe.
void calibrate_spin();

// Burns `us` microseconds of CPU with a fixed amount of arithmetic calibrated by calibrate_spin,
// so that the work per request is the same whatever the model and however threads are scheduled.
void spin_for_us(std::uint64_t us);

// Calibration handicap (`cbench-server --handicap-ns N`, for `cbench calibrate`): every request
// that handle() answers first burns N nanoseconds of CPU with the same calibrated loop as /spin,
// in every model alike, so that a known extra cost per request can be detected by the judging
// pipeline. 0 (the default) adds nothing. Set once at start-up, before any request.
void set_handicap_ns(std::uint64_t ns);

// Deterministic handicap (`cbench-server --handicap-loops N`): every request that handle() answers
// first runs N iterations of the /spin loop, uncalibrated, so that it costs the same number of
// instructions however fast the machine or the instrument (callgrind counts them exactly, where
// --handicap-ns would calibrate against valgrind's slowed clock). 0 (the default) adds nothing.
// Set once at start-up, before any request.
void set_handicap_loops(std::uint64_t loops);

}  // namespace cb::http
