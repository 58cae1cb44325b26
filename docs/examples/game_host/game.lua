-- A small game for the host: a player walks about; every 10 frames its state is saved, every 30
-- frames it is loaded back. Nothing here waits for the database: results arrive in callbacks that
-- mgconn.poll() runs at the start of each frame.
local mgconn = require "mgconn"

local conn = mgconn.connect(MGCONN_URI, { heartbeatFrequencyMS = 500, bufferTimeoutMS = 30000 })
local Player = mgconn.model("Player", mgconn.Schema({ name = "string", x = "number", score = "number" }))
local stats = { saves = 0, saved = 0, loads = 0, loaded = 0, failed = 0, events = {} }
for _, name in ipairs({ "disconnected", "reconnected" }) do
  conn:on(name, function() stats.events[#stats.events + 1] = name; print("event: " .. name) end)
end

local player = { _id = "p1", name = "ada", x = 0, score = 0 }

function frame(n)
  player.x = player.x + 1
  player.score = player.score + (n % 7)
  if n % 10 == 0 then
    stats.saves = stats.saves + 1
    Player:replaceOne({ _id = "p1" }, player, { upsert = true }, function(err)
      if err then stats.failed = stats.failed + 1; print("save failed: " .. tostring(err))
      else stats.saved = stats.saved + 1 end
    end)
  end
  if n % 30 == 0 then
    stats.loads = stats.loads + 1
    Player:findOne({ _id = "p1" }, function(err, doc)
      if err then stats.failed = stats.failed + 1 else stats.loaded = stats.loaded + 1 end
    end)
  end
end

-- After the last frame: let outstanding saves land (up to 30 s), then report.
function finish()
  local deadline = mgconn.now() + 30000
  while (stats.saved + stats.loaded + stats.failed < stats.saves + stats.loads) and mgconn.now() < deadline do
    mgconn.poll()
    mgconn.idle(10)
  end
  local doc = Player:findOne({ _id = "p1" }):wait(10)
  print(string.format("saves %d/%d, loads %d/%d, failed %d, events: %s; stored x=%s (player x=%d)",
                      stats.saved, stats.saves, stats.loaded, stats.loads, stats.failed,
                      table.concat(stats.events, ","), doc and doc.x or "?", player.x))
  conn:close():wait(10)
  return stats.failed == 0 and stats.saved == stats.saves and doc ~= nil
end
