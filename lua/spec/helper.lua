-- Test helpers: a FerretDB of the spec's own (through the project's launcher), and waits with
-- deadlines that keep polling.
local mgconn = require "mgconn"

local H = {}
local root = os.getenv("MGCONN_SOURCE_DIR") or "."

local function free_port()
  local p = io.popen("python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])'")
  local port = tonumber(p:read("*l"))
  p:close()
  return port
end

function H.server(opts)
  local s = { port = free_port(), dir = os.tmpname() }
  os.remove(s.dir)
  s.uri = "mongodb://127.0.0.1:" .. s.port .. "/"
  function s.start()
    s.proc = io.popen(string.format("python3 %s/python/mgconn/ferretdb.py serve --no-stdin --data %s --port %d",
                                    root, s.dir, s.port))
    local line = s.proc:read("*l") or ""
    s.pid = tonumber(line:match("^ready %d+ (%d+)"))
    assert(s.pid, "FerretDB did not start: " .. line)
    return s
  end
  function s.kill()
    if s.pid then os.execute("kill -9 " .. s.pid) s.proc:close() s.pid = nil end
  end
  function s.stop()
    s.kill()
    os.execute("rm -rf " .. s.dir)
  end
  if not (opts and opts.later) then s.start() end
  return s
end

local python = os.getenv("MGCONN_PYTHON") or (root .. "/build-venv/bin/python")

-- A scripted one-member replica set (tests/mock/rs_primary.py, mockupdb from the Python test
-- requirements, in build-venv or $MGCONN_PYTHON): p.uri, p.commands(name) (what it received, in
-- order), p.stop().
function H.primary(scenario)
  local p = { log = os.tmpname() }
  p.proc = io.popen(string.format("%s %s/tests/mock/rs_primary.py --scenario %s --log %s", python, root, scenario,
                                  p.log))
  local line = p.proc:read("*l") or ""
  local port, pid = line:match("^ready (%d+) (%d+)")
  assert(port, "the scripted primary did not start (" .. python .. " with mockupdb): " .. line)
  p.uri, p.pid = "mongodb://127.0.0.1:" .. port .. "/shop?replicaSet=rs0", pid
  function p.commands(name)
    local out = {}
    for l in io.lines(p.log) do
      local cmd = require("mgconn.core").fromjson(l)
      if cmd and (name == nil or cmd.name == name) then out[#out + 1] = cmd end
    end
    return out
  end
  function p.stop()
    os.execute("kill " .. p.pid)
    p.proc:close()
    os.remove(p.log)
  end
  return p
end

function H.closed_port() return free_port() end

-- Polls until pred() is true or `timeout` seconds pass; returns pred()'s last value.
function H.until_true(pred, timeout)
  local stop = mgconn.now() + (timeout or 10) * 1000
  while true do
    mgconn.poll()
    local v = pred()
    if v then return v end
    if mgconn.now() > stop then return v end
    mgconn.idle(20)
  end
end

function H.recorder(conn)
  local r = { names = {} }
  for _, name in ipairs({ "connecting", "connected", "open", "disconnecting", "disconnected", "close",
                          "reconnected", "error" }) do
    conn:on(name, function(err) r.names[#r.names + 1] = name; r[name] = err or true end)
  end
  function r.seq() return table.concat(r.names, ",") end
  return r
end

-- Whether a coroutine may yield inside pcall and from a for-loop's iterator: Lua 5.2 on and LuaJIT,
-- not PUC Lua 5.1 (its "attempt to yield across metamethod/C-call boundary").
H.yields_anywhere = select(2, coroutine.resume(coroutine.create(function()
  return pcall(coroutine.yield, "yielded")
end))) == "yielded"

-- Runs fn in a coroutine and polls until it finished; re-raises its error. (On 5.1 the coroutine
-- cannot run fn under xpcall and yield: a failure is told by the dead coroutine, and its traceback
-- goes where mgconn.spawn sends it, mgconn.onError's handler, stderr by default.)
function H.run(fn, timeout)
  local done, err = false, nil
  local co = mgconn.spawn(function()
    if H.yields_anywhere then
      local ok, e = xpcall(fn, debug.traceback)
      done, err = true, (not ok) and e or nil
    else
      fn()
      done = true
    end
  end)
  H.until_true(function() return done or coroutine.status(co) == "dead" end, timeout or 30)
  if not done and coroutine.status(co) == "dead" then
    error("the coroutine raised (its traceback is above, from mgconn.onError)", 0)
  end
  assert(done, "the coroutine did not finish in time")
  if err then error(err, 0) end
end

-- for doc in cursor:iter() where a for-loop's iterator may yield; a next() loop on 5.1.
function H.each(cursor, fn)
  if H.yields_anywhere then
    for doc in cursor:iter() do fn(doc) end
  else
    while true do
      local doc, err = cursor:next()
      if err then error(err, 2) end
      if doc == nil then return end
      fn(doc)
    end
  end
end

-- Reads a cursor's first document and leaves it, as `for doc in cursor do break end` does (a next()
-- on 5.1, which cannot yield from a for-loop's iterator or inside pcall): nil, or what failed.
function H.read_first(cursor)
  if H.yields_anywhere then
    local ok, err = pcall(function() for doc in cursor do if doc then break end end end)
    return (not ok) and tostring(type(err) == "table" and err.message or err) or nil
  end
  local doc, err = cursor:next()
  return (not doc) and tostring(err and err.message or "no document") or nil
end

return H
