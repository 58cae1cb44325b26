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

-- Runs fn in a coroutine and polls until it finished; re-raises its error.
function H.run(fn, timeout)
  local done, err = false, nil
  mgconn.spawn(function()
    local ok, e = xpcall(fn, debug.traceback)
    done, err = true, (not ok) and e or nil
  end)
  H.until_true(function() return done end, timeout or 30)
  assert(done, "the coroutine did not finish in time")
  if err then error(err, 0) end
end

return H
