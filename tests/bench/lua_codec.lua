-- Client CPU of the Lua converters alone (no server): how much of a Lua operation's cost above raw
-- libmongoc is turning Lua tables into BSON and back, which a C program holding BSON never pays.
--   lua5.4 tests/bench/lua_codec.lua tests/bench/data/driverbench
local core = require "mgconn.core"
local dir = arg[1]
local function load(name)
  local f = assert(io.open(dir .. "/" .. name))
  local text = f:read("a")
  f:close()
  return core.fromjson(text)
end
for _, name in ipairs({ "small_doc.json", "tweet.json", "large_doc.json" }) do
  local doc = load(name)
  local n = name == "large_doc.json" and 10 or 10000
  local bytes
  local c0 = os.clock()
  for _ = 1, n do bytes = core.encode(doc) end
  local enc = (os.clock() - c0) / n * 1e6
  c0 = os.clock()
  for _ = 1, n do core.decode(bytes) end
  local dec = (os.clock() - c0) / n * 1e6
  print(string.format("%-15s %8d bytes  encode %9.1f us  decode %9.1f us", name, #bytes, enc, dec))
end
