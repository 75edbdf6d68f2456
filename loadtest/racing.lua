-- wrk's script for loadtest/racing: each thread signs signers 0, 1, 2, …
-- ("racing": every thread the same signers, so each is sent once per
-- thread at nearly the same moment, as a replayed form is) or its own
-- ("unique": thread t of T takes t, t + T, t + 2T, …).
local threads = {}
local mode = os.getenv("RACING_MODE") or "unique"
local path = os.getenv("RACING_PATH")

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  sent, other = 0, 0
  count = #threads
end

function request()
  local i = sent
  if mode == "unique" then i = sent * tonumber(os.getenv("RACING_THREADS")) + index end
  sent = sent + 1
  local body = string.format(
    '{"full_name":"Signer %d","email":"signer-%d@example.org","country":"NL",' ..
    '"signer_kind":"person","consent_updates":false}', i, i)
  return wrk.format("POST", path, {["content-type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status ~= 202 then other = other + 1 end
end

function done(summary, latency, requests)
  local most, total, refused = 0, 0, 0
  for _, t in ipairs(threads) do
    local n = t:get("sent")
    total = total + n
    if n > most then most = n end
    refused = refused + t:get("other")
  end
  local signers = total
  if mode == "racing" then signers = most end
  io.write(string.format("signers %d requests %d not-202 %d errors %d p50 %.2f p99 %.2f\n",
    signers, summary.requests, refused,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
      + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
