-- Figures, not a test: what a close costs the host with 20,000 cached useDb children listening.
-- Prints the time of the close() call and the worst mgconn.poll(1) while the close's events reach
-- every child. Run it as the Lua specs run (scripts/test.sh's lua_suite sets the same paths):
--   MGCONN_SOURCE_DIR=$PWD LUA_CPATH="build-luarocks/lib/lua/5.4/?.so;;" \
--   LUA_PATH="build-luarocks/share/lua/5.4/?.lua;lua/spec/?.lua;;" lua5.4 lua/test/fanout_frame.lua
local mgconn = require "mgconn"
local H = require "helper"
local s = H.server()
local conn = mgconn.createConnection(s.uri .. "fan")
assert(conn:asPromise():wait(10))
local children, heard = {}, 0
for i = 1, 20000 do
  children[i] = conn:useDb("t" .. i, { useCache = true })
  children[i]:on("disconnected", function() heard = heard + 1 end)
end
mgconn.poll()
local t0 = mgconn.now()
local closing = conn:close()
local close_ms = mgconn.now() - t0
local worst, stop = 0, mgconn.now() + 30000
while not closing:done() and mgconn.now() < stop do
  local a = mgconn.now()
  mgconn.poll(1)
  worst = math.max(worst, mgconn.now() - a)
end
print(string.format("20,000 cached children: close() call %.1f ms, worst poll(1) %.1f ms, %d children heard",
                    close_ms, worst, heard))
s.stop()
