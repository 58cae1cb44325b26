-- The api.md Lua example, runnable: a callback, a coroutine, and the host's frame loop.
--   lua5.4 quickstart.lua mongodb://127.0.0.1:27017/game
local mgconn = require "mgconn"
local uri = arg and arg[1] or "mongodb://127.0.0.1:27017/game"

local conn = mgconn.connect(uri, { serverSelectionTimeoutMS = 5000 })
conn:on("reconnected", function() print("back") end)
local Player = mgconn.model("Player", mgconn.Schema({ name = "string" }, { bufferCommands = true }))

Player:insertOne({ name = "ada", score = 10 }, function(err, res) -- callback style
  if err then print(err.category, err.message) else print("saved", tostring(res.insertedId)) end
end)

local done = false
mgconn.spawn(function() -- coroutine style: each await yields until its result is in
  Player:insertOne({ name = "grace", score = 20 }):await()
  local doc = Player:findOne({ name = "grace" }):await()
  print("score", doc.score)
  done = true
end)

local frames = 0
while not done and frames < 600 do -- the host's frame loop
  mgconn.poll()                      -- runs due callbacks and resumes coroutines; never blocks
  frames = frames + 1
  mgconn.idle(16)                    -- a real game draws its frame here
end
conn:close():wait(10)
print("frames drawn while waiting:", frames)
