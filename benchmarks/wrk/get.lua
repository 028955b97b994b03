-- A plain GET of the URL on wrk's command line; only the report is added.
package.path = package.path .. ";" .. (os.getenv("BENCH_LUA_DIR") or ".") .. "/?.lua"
local report = require("report")
done = report.done
