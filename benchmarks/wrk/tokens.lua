-- POST /confirm/{token} or /unsubscribe/{token} (one-click, RFC 8058): each request a token
-- of its own, read from BENCH_TOKENS (one per line); the threads take turns through the list.
package.path = package.path .. ";" .. (os.getenv("BENCH_LUA_DIR") or ".") .. "/?.lua"
local report = require("report")
done = report.done

local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

local tokens = {}
local path = os.getenv("BENCH_PATH")  -- "/confirm/" or "/unsubscribe/"
local body = os.getenv("BENCH_BODY") or ""

function init(args)
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    tokens[#tokens + 1] = line
  end
end

local counter = 0
function request()
  local step = tonumber(os.getenv("BENCH_THREADS"))
  local i = (id + counter * step) % #tokens + 1
  counter = counter + 1
  local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  return wrk.format("POST", path .. tokens[i], headers, body)
end
