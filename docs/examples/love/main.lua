-- A small LÖVE game that keeps its player's state in MongoDB through mgconn, on LÖVE's LuaJIT.
--
-- Every 10th frame it saves the player (replaceOne by _id, upserting), every 30th it loads the
-- stored state back, and it draws the connection's state and the frame time. Nothing it does waits
-- for the database: saves are issued and forgotten, their callbacks run inside mgconn.poll(), once
-- per frame. When the server goes away the saves wait in mgconn's buffer and land after the
-- reconnect, in order; the frame never notices.
--
--   love docs/examples/love                      (mongodb://127.0.0.1:27017/lovegame)
--
-- Settings from the environment (docs/examples/love/run.py, the test, sets them):
--   MGCONN_URI           the database (default mongodb://127.0.0.1:27017/lovegame)
--   MGCONN_LUA_CPATH     where mgconn.so is (CMake's build/lua-single-luajit/?.so), before LÖVE's path
--   MGCONN_PLAY_SECONDS  play this long, then stop saving, wait for the last save, print a summary
--                        and quit (default: play until the window closes)
--   MGCONN_SCREENSHOT    a PNG of the last frame, written before quitting
local cpath = os.getenv("MGCONN_LUA_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end
local mgconn = require "mgconn"

io.stdout:setvbuf("line")
local function say(...) print(table.concat({ ... }, " ")) end

local uri = os.getenv("MGCONN_URI") or "mongodb://127.0.0.1:27017/lovegame"
local play_seconds = tonumber(os.getenv("MGCONN_PLAY_SECONDS") or "0")
local screenshot_path = os.getenv("MGCONN_SCREENSHOT")

-- The thread's voluntary context switches (getrusage(RUSAGE_THREAD) through LuaJIT's FFI). Work that
-- waits on anything (a lock, a socket) switches voluntarily; work the scheduler merely preempted on
-- a busy machine does not. A slow frame is mgconn's fault only if it waited.
local function voluntary_switches() return 0 end
do
  local ok, ffi = pcall(require, "ffi")
  if ok and ffi.os == "Linux" then
    ffi.cdef [[ struct mg_rusage { long fields[18]; }; int getrusage(int who, struct mg_rusage *usage); ]]
    local usage = ffi.new("struct mg_rusage")
    voluntary_switches = function() -- two timevals, then 14 longs: ru_nvcsw is the 13th of them
      ffi.C.getrusage(1, usage)
      return tonumber(usage.fields[16])
    end
  end
end

local SAVE_EVERY, LOAD_EVERY = 10, 30
local STATES = { [0] = "disconnected", [1] = "connected", [2] = "connecting", [3] = "disconnecting" }

local conn, players
local player = { x = 320, y = 160, vx = 120, vy = 90, score = 0 }
local player_id = "player-" .. os.time()
local game = {
  frame = 0, started = 0, seq = 0, landed = 0, failed = 0, loads = 0, loaded = nil,
  events = {}, frame_ms = 0, work_ms = 0, worst_work_ms = 0, worst_waiting_ms = 0, works = {}, phase = "play",
}

local function saved(seq)
  return function(err)
    if err then
      game.failed = game.failed + 1
      say("save-failed", seq, err.category, err.message)
    else
      game.landed = game.landed + 1
    end
  end
end

local function save()
  game.seq = game.seq + 1
  players:replaceOne({ _id = player_id },
                     { _id = player_id, seq = game.seq, x = player.x, y = player.y, score = player.score },
                     { upsert = true }, saved(game.seq))
end

local function load(then_fn)
  players:findOne({ _id = player_id }, function(err, doc)
    if err then say("load-failed", err.category, err.message) return end
    game.loads = game.loads + 1
    game.loaded = doc
    if then_fn then then_fn(doc) end
  end)
end

function love.load()
  conn = mgconn.createConnection(uri, { heartbeatFrequencyMS = 500, bufferTimeoutMS = 30000 })
  for _, name in ipairs({ "connected", "open", "disconnected", "reconnected", "close" }) do
    conn:on(name, function()
      game.events[#game.events + 1] = name
      say("event", name)
    end)
  end
  players = conn:collection("players")
  game.started = love.timer.getTime()
end

local function percentile(list, p)
  local sorted = {}
  for i, v in ipairs(list) do sorted[i] = v end
  table.sort(sorted)
  return sorted[math.max(1, math.ceil(#sorted * p))] or 0
end

local function finish()
  game.phase = "done"
  load(function(doc)
    local stored = doc and doc.seq or 0
    say(string.format("summary frames=%d saves=%d landed=%d failed=%d stored_seq=%d loads=%d worst_ms=%.3f p99_ms=%.3f "
                      .. "worst_waiting_ms=%.3f", game.frame, game.seq, game.landed, game.failed, stored, game.loads,
                      game.worst_work_ms, percentile(game.works, 0.99), game.worst_waiting_ms))
    if screenshot_path then
      game.phase = "screenshot"
      love.graphics.captureScreenshot(function(image)
        local f = assert(io.open(screenshot_path, "wb"))
        f:write(image:encode("png"):getString())
        f:close()
        say("screenshot", screenshot_path)
        love.event.quit()
      end)
    else
      love.event.quit()
    end
  end)
end

function love.update(dt)
  -- the game
  player.x, player.y = player.x + player.vx * dt, player.y + player.vy * dt
  if player.x < 20 or player.x > 620 then player.vx = -player.vx end
  if player.y < 70 or player.y > 270 then player.vy = -player.vy end
  player.score = player.score + 1

  -- everything the frame asks of mgconn, timed
  local t0, switches0 = love.timer.getTime(), voluntary_switches()
  mgconn.poll(16) -- completions and events, at most 16 this frame
  game.frame = game.frame + 1
  if game.phase == "play" then
    if game.frame % SAVE_EVERY == 0 then save() end
    if game.frame % LOAD_EVERY == 0 then load() end
    if play_seconds > 0 and love.timer.getTime() - game.started > play_seconds then game.phase = "drain" end
  elseif game.phase == "drain" and game.landed + game.failed == game.seq then
    finish()
  end
  game.work_ms = (love.timer.getTime() - t0) * 1000
  game.works[#game.works + 1] = game.work_ms
  if game.work_ms > game.worst_work_ms then game.worst_work_ms = game.work_ms end
  if voluntary_switches() > switches0 and game.work_ms > game.worst_waiting_ms then
    game.worst_waiting_ms = game.work_ms -- a frame whose mgconn work waited for something
  end
  game.frame_ms = dt * 1000
end

function love.draw()
  local g = love.graphics
  g.clear(0.08, 0.09, 0.12)
  g.setColor(0.95, 0.75, 0.2)
  g.circle("fill", player.x, player.y, 14)
  if game.loaded then -- where the database last had the player
    g.setColor(0.3, 0.8, 1, 0.8)
    g.circle("line", game.loaded.x, game.loaded.y, 18)
  end
  local state = conn and STATES[conn.readyState] or "?"
  g.setColor(state == "connected" and { 0.4, 0.9, 0.4 } or { 1, 0.4, 0.3 })
  g.print("connection: " .. state, 12, 10)
  g.setColor(1, 1, 1)
  g.print(string.format("frame time %.1f ms   inside mgconn this frame %.3f ms, worst so far %.3f ms",
                        game.frame_ms, game.work_ms, game.worst_work_ms), 12, 28)
  g.print(string.format("saves issued %d   landed %d   failed %d   pending %d", game.seq, game.landed, game.failed,
                        game.seq - game.landed - game.failed), 12, 300)
  g.print(string.format("last load: seq %s   loads %d   phase %s", game.loaded and tostring(game.loaded.seq) or "-",
                        game.loads, game.phase), 12, 318)
  g.print("events: " .. table.concat(game.events, ", "), 12, 336)
end

-- LÖVE's loop, paced at 60 Hz (vsync is off: a headless display has none)
function love.run()
  love.load()
  love.timer.step()
  return function()
    local start = love.timer.getTime()
    love.event.pump()
    for name, a, b, c, d, e, f in love.event.poll() do
      if name == "quit" then
        if conn then conn:close(true) end
        return a or 0
      end
      love.handlers[name](a, b, c, d, e, f)
    end
    love.update(love.timer.step())
    if love.graphics.isActive() then
      love.graphics.origin()
      love.draw()
      love.graphics.present()
    end
    local left = 1 / 60 - (love.timer.getTime() - start)
    if left > 0 then love.timer.sleep(left) end
  end
end
