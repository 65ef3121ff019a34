-- POST /v3/auth/tokens with the password method, scoped to project admin (one bcrypt verify
-- per request on both systems).
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

wrk.method = "POST"
wrk.headers["Accept"] = "application/json"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin",'
  .. '"domain":{"id":"default"},"password":"' .. common.env("ADMIN_PASSWORD") .. '"}}},'
  .. '"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}'

done = common.done
