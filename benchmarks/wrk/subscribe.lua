-- POST /en/subscribe: every request a new address from a new client address (X-Forwarded-For
-- from the trusted proxy), so the per-IP and per-address limits are on but never reached.
package.path = package.path .. ";" .. (os.getenv("BENCH_LUA_DIR") or ".") .. "/?.lua"
local report = require("report")
done = report.done

local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

local run = tonumber(os.getenv("BENCH_RUN") or "0")  -- each worker count: new people
local counter = 0
function request()
  counter = counter + 1
  local n = counter
  local ip = string.format("%d.%d.%d.%d", 10 + run, id % 256, math.floor(n / 256) % 256, n % 256)
  local body = string.format(
    "email=bench-%d-%d-%d%%40example.org&languages=en&first=en", run, id, n)
  local headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Forwarded-For"] = ip,
  }
  return wrk.format("POST", "/en/subscribe", headers, body)
end
