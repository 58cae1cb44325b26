local mgconn = require "mgconn"
local uri = arg[1]
local conn = mgconn.connect(uri .. "luatry")
local P = mgconn.model("Player", mgconn.Schema({ name = "string", score = "number" }))
local doc, err = P:findOne({ name = "nobody" }):wait(10)
print("findOne no match:", doc, err)
assert(doc == nil and err == nil)
for i = 1, 5 do assert(P:insertOne({ name = "p" .. i, score = i }):wait(10)) end
local res = assert(P:insertOne({ name = "ada", score = 9 }):wait(10))
print("inserted", res.insertedId)
local done = false
mgconn.spawn(function()
  local n = 0
  for d in P:find({}, { batchSize = 2 }) do n = n + 1; print("  doc", d.name, d.score) end
  print("iterated", n)
  done = true
end)
local frames = 0
while not done do mgconn.poll(); mgconn.idle(16); frames = frames + 1 end
print("frames", frames)
assert(mgconn.disconnect():wait(10))
