-- cbench.lua: the wrk script of `cbench sweep`.
--
-- Usage: wrk -s scripts/lua/cbench.lua URL -- [pipeline=N]
--
-- Two jobs:
--   1. Pipelining: with pipeline=N (N > 1) every write carries N copies of the
--      request for wrk.path. wrk counts the N requests in the batch itself
--      (script_verify_request) and records ONE latency sample per batch, taken
--      from the write of the batch to the last of its N responses; the results
--      therefore say latency_is_per_batch. With N = 1 no request() function is
--      defined, so wrk keeps its static request and never calls into Lua on the
--      hot path (a defined request() makes wrk "dynamic" and costs client CPU).
--   2. done(): prints one line, "cbench-wrk-json: {...}", with wrk's totals,
--      error counters and latency statistics as JSON. wrk's latency unit is the
--      microsecond. The harness keeps wrk's human-readable output too, and falls
--      back to parsing it if this line is missing.

local depth = 1

function init(args)
   -- args[0] is the URL; the harness passes "pipeline=N" after it.
   for i = 1, #args do
      local n = string.match(args[i], "^pipeline=(%d+)$")
      if n then depth = tonumber(n) end
   end
   if depth > 1 then
      local one = wrk.format(nil, wrk.path)
      local batch = string.rep(one, depth)
      -- Defining the global here (not at file scope) keeps depth 1 static.
      request = function() return batch end
   end
end

local function num(x)
   -- JSON has no NaN or infinity; wrk gives NaN-free values, but be safe.
   if x == nil or x ~= x or x == math.huge or x == -math.huge then
      return "null"
   end
   if x == math.floor(x) and math.abs(x) < 2^53 then
      return string.format("%d", x)
   end
   return string.format("%.3f", x)
end

function done(summary, latency, requests)
   local e = summary.errors
   local parts = {
      '"requests":' .. num(summary.requests),
      '"duration_us":' .. num(summary.duration),
      '"bytes":' .. num(summary.bytes),
      '"errors":{"connect":' .. num(e.connect) .. ',"read":' .. num(e.read) ..
         ',"write":' .. num(e.write) .. ',"status":' .. num(e.status) ..
         ',"timeout":' .. num(e.timeout) .. '}',
      '"latency_us":{"min":' .. num(latency.min) .. ',"mean":' .. num(latency.mean) ..
         ',"stdev":' .. num(latency.stdev) .. ',"max":' .. num(latency.max) ..
         ',"p50":' .. num(latency:percentile(50)) ..
         ',"p75":' .. num(latency:percentile(75)) ..
         ',"p90":' .. num(latency:percentile(90)) ..
         ',"p99":' .. num(latency:percentile(99)) ..
         ',"p99.9":' .. num(latency:percentile(99.9)) .. '}',
      '"samples":' .. num(#latency),
      '"thread_req_per_s":{"mean":' .. num(requests.mean) .. ',"stdev":' ..
         num(requests.stdev) .. ',"max":' .. num(requests.max) .. '}',
   }
   io.write("cbench-wrk-json: {" .. table.concat(parts, ",") .. "}\n")
   io.flush()
end
