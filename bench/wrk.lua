-- One wrk script for every scenario, configured through environment variables set by bench.py:
--   BENCH_METHOD   GET or POST (default GET)
--   BENCH_PATH     request path; "{id}" is replaced by the next id of BENCH_IDS (rotated)
--   BENCH_IDS      file with one id per line (for "{id}" paths)
--   BENCH_BODY     request body (POST); "{n}" is replaced by a per-thread counter
--   BENCH_AUTH     value of the Authorization header, if any
--   BENCH_ACK_DIR  if set, the id of every 2xx answer is appended to BENCH_ACK_DIR/<thread>.ids
--                  (Lucent answers a create 201, PocketBase 200), so bench.py can check that
--                  every acknowledged create is in the database
-- done() prints one line "BENCH_RESULT {json}" with the counts and latency percentiles (µs).

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local body = os.getenv("BENCH_BODY")
local auth = os.getenv("BENCH_AUTH")
local ids_file = os.getenv("BENCH_IDS")
local ack_dir = os.getenv("BENCH_ACK_DIR")

local threads = {}
local counter = 1

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

local ids = {}
local next_id = 1
local ack_file = nil
local headers = { ["Content-Type"] = "application/json" }
if auth and auth ~= "" then headers["Authorization"] = auth end

function init(args)
   if ids_file and ids_file ~= "" then
      for line in io.lines(ids_file) do
         if line ~= "" then table.insert(ids, line) end
      end
      -- each thread starts at a different place of the rotation
      next_id = ((tid or 1) * 7919) % #ids + 1
   end
   if ack_dir and ack_dir ~= "" then
      ack_file = io.open(ack_dir .. "/" .. tostring(tid or 0) .. ".ids", "a")
   end
end

function request()
   local p = path
   if #ids > 0 then
      p = string.gsub(path, "{id}", ids[next_id])
      next_id = next_id % #ids + 1
   end
   local b = nil
   if body and body ~= "" then
      b = string.gsub(body, "{n}", tostring(tid or 0) .. "-" .. tostring(counter))
      counter = counter + 1
   end
   return wrk.format(method, p, headers, b)
end

if ack_dir and ack_dir ~= "" then
   function response(status, hdrs, resp_body)
      if status >= 200 and status < 300 and ack_file then
         -- both products answer the created record with its "id" first-level key
         local id = string.match(resp_body, '"id"%s*:%s*"([^"]+)"')
         ack_file:write((id or "?") .. "\n")
         ack_file:flush()
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "non2xx": %d, "connect_errors": %d, ' ..
      '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, ' ..
      '"p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean))
end
