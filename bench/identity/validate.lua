-- GET /v3/auth/tokens: validate $SUBJECT_TOKEN with $ADMIN_TOKEN (both project-scoped to admin).
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

wrk.method = "GET"
wrk.headers["Accept"] = "application/json"
wrk.headers["X-Auth-Token"] = common.env("ADMIN_TOKEN")
wrk.headers["X-Subject-Token"] = common.env("SUBJECT_TOKEN")

done = common.done
