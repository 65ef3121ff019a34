-- POST /v3/auth/tokens with the token method: re-scope $SUBJECT_TOKEN to project admin.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

wrk.method = "POST"
wrk.headers["Accept"] = "application/json"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"auth":{"identity":{"methods":["token"],"token":{"id":"'
  .. common.env("SUBJECT_TOKEN")
  .. '"}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}'

done = common.done
