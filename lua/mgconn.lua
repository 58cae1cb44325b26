--- mgconn: MongoDB connections for Lua 5.4 with Mongoose's behaviour (buffering, events, models),
--- on a C core that never makes the host's frame wait for the database.
---
---   local mgconn = require "mgconn"
---   local conn = mgconn.connect("mongodb://127.0.0.1:27017/game")
---   local Player = mgconn.model("Player", mgconn.Schema({ name = "string" }))
---   Player:insertOne({ name = "ada" }, function(err, res) ... end)   -- callback style
---   mgconn.spawn(function() local doc = Player:findOne({ name = "ada" }):await() end)
---   while running do mgconn.poll() ... end                            -- once per frame
---
--- Callbacks, listeners and coroutines run only inside mgconn.poll() (or op:wait()), on the
--- calling thread. Misuse raises; operational failures come back as err tables.
local core = require "mgconn.core"

local M = { version = core.version, null = core.null }

-- ---------------------------------------------------------------------------------------------
-- values

local registry = debug.getregistry()
local ARRAY, ORDERED = registry["mgconn.array"], registry["mgconn.ordered"]

--- Marks a table as a BSON array (decoded arrays come back marked).
function M.array(t) return setmetatable(t or {}, ARRAY) end
--- A document whose keys keep the given order: mgconn.ordered("b", 1, "a", 2).
function M.ordered(...) return setmetatable({ ... }, ORDERED) end

local function typed(name, fields)
  local mt = registry["mgconn." .. name]
  mt.__name = "mgconn." .. name
  return setmetatable(fields, mt)
end

local hexmap = {}
for i = 0, 255 do hexmap[string.format("%02x", i)] = string.char(i) end

local oid_counter, oid_random = math.random(0, 0xFFFFFF), ""
for _ = 1, 5 do oid_random = oid_random .. string.char(math.random(0, 255)) end

function M.ObjectId(hex)
  if hex == nil then
    oid_counter = (oid_counter + 1) & 0xFFFFFF
    return typed("ObjectId", { bytes = string.pack(">I4", os.time() & 0xFFFFFFFF) .. oid_random
                                            .. string.pack(">I3", oid_counter) })
  end
  assert(type(hex) == "string" and #hex == 24 and hex:match("^%x+$"), "an ObjectId is 24 hex digits")
  return typed("ObjectId", { bytes = (hex:lower():gsub("%x%x", hexmap)) })
end
function M.Int64(v) return typed("Int64", { value = math.tointeger(v) or error("Int64 needs an integer") }) end
function M.Decimal128(s) return typed("Decimal128", { value = tostring(s) }) end
function M.Binary(data, subtype) return typed("Binary", { data = data, subtype = subtype or 0 }) end
function M.Regex(pattern, flags) return typed("Regex", { pattern = pattern, flags = flags or "" }) end
function M.Timestamp(t, i) return typed("Timestamp", { t = t, i = i }) end
function M.Date(ms) return typed("Date", { ms = ms or math.floor(os.time() * 1000) }) end
M.MinKey = function() return core.minKey end
M.MaxKey = function() return core.maxKey end

registry["mgconn.ObjectId"].__tostring = function(o)
  return (o.bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
registry["mgconn.ObjectId"].__eq = function(a, b) return a.bytes == b.bytes end
registry["mgconn.null"].__tostring = function() return "null" end
registry["mgconn.Error"].__tostring = function(e) return e.category .. "Error: " .. e.message end

-- ---------------------------------------------------------------------------------------------
-- errors: operational failures are tables {category, message, code, codeName, labels, reason}

local function type_error(message)
  return setmetatable({ category = "Type", message = message, code = 0, codeName = "",
                        labels = M.array(), reason = {} }, registry["mgconn.Error"])
end

local on_error = function(msg) io.stderr:write("mgconn: error in a callback: ", tostring(msg), "\n") end
--- Where errors raised by callbacks and listeners go (default: stderr). Dispatch goes on.
function M.onError(fn) on_error = fn; registry["mgconn.on_error"] = fn end
registry["mgconn.on_error"] = function(msg) on_error(msg) end

-- ---------------------------------------------------------------------------------------------
-- operation handles: one object, three ways to wait

local Op = {}
Op.__index = Op

local later = {} -- results that are known at once (a bad value): delivered at the next poll

local function finish(op, err, result)
  op._done, op._err, op._result = true, err, result
  if op._cb then
    local ok, msg = xpcall(op._cb, debug.traceback, err, result)
    if not ok then on_error(msg) end
  end
  for _, co in ipairs(op._waiters) do
    local ok, msg = coroutine.resume(co, result, err)
    if not ok then on_error(debug.traceback(co, msg)) end
  end
  op._waiters = {}
end

-- `transform` turns the C op's reply into the result the user sees.
local function start(call, cb, transform)
  local op = setmetatable({ _waiters = {}, _cb = cb, _done = false }, Op)
  local native, message = call(function(native)
    local e = native:error()
    if e then finish(op, e, nil) else finish(op, nil, transform and transform(native) or native:reply()) end
  end)
  if native == nil then -- a value that cannot be converted: this operation fails, nothing is sent
    later[#later + 1] = function() finish(op, type_error(message), nil) end
  end
  op._native = native
  return op
end

--- Inside a coroutine started with mgconn.spawn: yields until done; returns result, or nil, err.
function Op:await()
  if not self._done then
    local co, main = coroutine.running()
    if main then error("op:await() needs a coroutine (mgconn.spawn); use op:wait() in plain scripts", 2) end
    self._waiters[#self._waiters + 1] = co
    return coroutine.yield()
  end
  if self._err then return nil, self._err end
  return self._result
end

--- Blocks (dispatching meanwhile) until done or `timeout` seconds; returns result, or nil, err.
function Op:wait(timeout)
  local deadline = timeout and core.now() + timeout * 1000
  while not self._done do
    M.poll()
    if self._done then break end
    local left = deadline and deadline - core.now() or 100
    if left <= 0 then break end
    core.wait(math.min(100, math.ceil(left)))
  end
  if not self._done then return nil, type_error("timed out waiting for the operation") end
  if self._err then return nil, self._err end
  return self._result
end

function Op:done() return self._done end
function Op:cancel() return self._native ~= nil and self._native:cancel() end
function Op:error() return self._err end
function Op:result() return self._result end

-- ---------------------------------------------------------------------------------------------
-- cursors

local Cursor = {}
Cursor.__index = Cursor

function Cursor:_fetch(cb)
  local call
  if not self._started then
    self._started = true
    call = function(done) return self._coll._native:call(self._kind, self._arg, nil, self._opts, done) end
  else
    call = function(done) return self._native:next(done) end
  end
  return start(call, cb, function(native)
    local reply = native:reply()
    for _, doc in ipairs(reply.batch) do self._buffer[#self._buffer + 1] = doc end
    if reply.done then self._exhausted, self._native = true, nil
    elseif not self._native then self._native = native:cursor() end
    return true
  end)
end

--- The next document (nil at the end; nil, err on failure), waiting in a coroutine.
function Cursor:next()
  if #self._buffer == 0 and not self._exhausted then
    local ok, err = self:_fetch():await()
    if not ok then return nil, err end
    if #self._buffer == 0 and not self._exhausted then return self:next() end
  end
  return table.remove(self._buffer, 1)
end

--- for doc in cursor:iter() do ... end, inside a coroutine.
function Cursor:iter() return function() return (self:next()) end end

--- Every document, as an op (callback, :await() or :wait()).
function Cursor:toArray(cb)
  local out = M.array()
  local result = setmetatable({ _waiters = {}, _cb = cb, _done = false }, Op)
  local function step(ok, err)
    if err then return finish(result, err, nil) end
    while #self._buffer > 0 do out[#out + 1] = table.remove(self._buffer, 1) end
    if self._exhausted then return finish(result, nil, out) end
    local op = self:_fetch(function(e, r) step(r, e) end)
    result._native = op._native
  end
  step(true, nil)
  return result
end

-- ---------------------------------------------------------------------------------------------
-- collections and models

local Collection = {}
Collection.__index = Collection

local function options(t) if t == nil or next(t) == nil then return nil end return t end

local function op_on(coll, name, a, b, opts, cb, transform)
  return start(function(done) return coll._native:call(name, a, b, opts, done) end, cb, transform)
end

local function split_cb(opts, cb)
  if type(opts) == "function" then return nil, opts end
  return opts, cb
end

function Collection:insertOne(doc, opts, cb)
  opts, cb = split_cb(opts, cb)
  return op_on(self, "insertOne", doc, nil, options(opts), cb)
end
function Collection:insertMany(docs, opts, cb)
  opts, cb = split_cb(opts, cb)
  return op_on(self, "insertMany", docs and M.array(docs), nil, options(opts), cb)
end
function Collection:findOne(filter, opts, cb)
  opts, cb = split_cb(opts, cb)
  return op_on(self, "findOne", filter or {}, nil, options(opts), cb, function(n)
    local doc = n:reply().document
    if doc == M.null then return nil end -- no match is nil, not the null value
    return doc
  end)
end
function Collection:updateOne(filter, update, opts, cb)
  opts, cb = split_cb(opts, cb)
  return op_on(self, "updateOne", filter, update, options(opts), cb)
end
function Collection:updateMany(filter, update, opts, cb)
  opts, cb = split_cb(opts, cb)
  return op_on(self, "updateMany", filter, update, options(opts), cb)
end
function Collection:replaceOne(filter, doc, opts, cb)
  opts, cb = split_cb(opts, cb)
  return op_on(self, "replaceOne", filter, doc, options(opts), cb)
end
function Collection:deleteOne(filter, cb) return op_on(self, "deleteOne", filter, nil, nil, cb) end
function Collection:deleteMany(filter, cb) return op_on(self, "deleteMany", filter, nil, nil, cb) end
function Collection:countDocuments(filter, cb)
  if type(filter) == "function" then filter, cb = nil, filter end
  return op_on(self, "countDocuments", filter or {}, nil, nil, cb, function(n) return n:reply().count end)
end
function Collection:estimatedDocumentCount(cb)
  return op_on(self, "estimatedDocumentCount", nil, nil, nil, cb, function(n) return n:reply().count end)
end
function Collection:createIndexes(indexes, cb)
  return op_on(self, "createIndexes", M.array(indexes), nil, nil, cb, function(n) return n:reply().names end)
end
function Collection:drop(cb) return op_on(self, "drop", nil, nil, nil, cb, function() return true end) end
function Collection:find(filter, opts)
  return setmetatable({ _coll = self, _kind = "find", _arg = filter or {}, _opts = options(opts), _buffer = {} },
                      Cursor)
end
function Collection:aggregate(pipeline, opts)
  return setmetatable({ _coll = self, _kind = "aggregate", _arg = M.array(pipeline), _opts = options(opts),
                        _buffer = {} }, Cursor)
end

local Model = setmetatable({}, { __index = Collection })
Model.__index = Model

function Model:init(cb)
  return start(function(done) return self._model:init(done) end, cb, function() return true end)
end
function Model:on(event, fn)
  assert(event == "index", "a model's only event is 'index'")
  self._index_listeners[#self._index_listeners + 1] = fn
  return self
end

-- ---------------------------------------------------------------------------------------------
-- schemas

local Schema = {}
Schema.__index = Schema

local function describe(v)
  if type(v) == "table" then
    local t = {}
    for k, x in pairs(v) do t[tostring(k)] = describe(x) end
    return t
  elseif type(v) == "function" then return "function"
  end
  return v
end

--- mgconn.Schema({ name = "string" }, { bufferCommands = true, capped = 4096, collection = "people" })
function M.Schema(definition, opts)
  return setmetatable({ definition = definition or {}, options = opts or {},
                        _native = core.schema(describe(definition or {}), options(opts)) }, Schema)
end
function Schema:index(keys, opts) self._native:index(keys, options(opts)); return self end

-- ---------------------------------------------------------------------------------------------
-- connections

local Connection = {}
Connection.__index = function(self, key)
  if key == "readyState" then return (self._native:info()) end
  if key == "name" then return select(2, self._native:info()) end
  if key == "host" then return select(3, self._native:info()) end
  if key == "port" then return select(4, self._native:info()) end
  if key == "id" then return select(5, self._native:info()) end
  if key == "models" then return self._models end
  return Connection[key]
end

local EVENTS = { connecting = true, connected = true, open = true, disconnecting = true, disconnected = true,
                 close = true, reconnected = true, error = true }

local function wrap_connection(native)
  local conn = setmetatable({ _native = native, _listeners = {}, _models = {}, _children = {} }, Connection)
  native:onEvent(function(name, err) conn:_emit(name, err) end)
  return conn
end

function Connection:_emit(name, err)
  for _, entry in ipairs({ table.unpack(self._listeners[name] or {}) }) do
    if entry.once then self:off(name, entry.fn) end
    local ok, msg = xpcall(entry.fn, debug.traceback, err)
    if not ok then on_error(msg) end
  end
end

function Connection:on(event, fn)
  assert(EVENTS[event], "unknown event '" .. tostring(event) .. "'")
  self._listeners[event] = self._listeners[event] or {}
  table.insert(self._listeners[event], { fn = fn })
  return self
end
function Connection:once(event, fn)
  self:on(event, fn)
  self._listeners[event][#self._listeners[event]].once = true
  return self
end
function Connection:off(event, fn)
  for i, entry in ipairs(self._listeners[event] or {}) do
    if entry.fn == fn then table.remove(self._listeners[event], i) break end
  end
  return self
end

--- An op that completes with the connection once it is open, or fails with the connect error, or
--- with ConnectionClosed once the connection is closed (at once if it is closed).
function Connection:asPromise(cb)
  return start(function(done) return self._native:whenOpen(done) end, cb, function() return self end)
end

function Connection:openUri(uri, opts)
  self._native:open(uri, options(opts))
  return self
end
function Connection:close(force, cb)
  if type(force) == "function" then force, cb = false, force end
  return start(function(done) return self._native:close(force and true or false, done) end, cb,
               function() return true end)
end
function Connection:__close() self._native:free() end
function Connection:runCommand(cmd, db, cb)
  if type(db) == "function" then db, cb = nil, db end
  return start(function(done) return self._native:runCommand(cmd, db, done) end, cb)
end
function Connection:createCollection(name, opts, cb)
  opts, cb = split_cb(opts, cb)
  return start(function(done) return self._native:createCollection(name, options(opts), done) end, cb,
               function() return self:collection(name) end)
end
function Connection:dropDatabase(cb)
  return start(function(done) return self._native:dropDatabase(done) end, cb, function() return true end)
end
function Connection:collection(name)
  return setmetatable({ _native = self._native:collection(name), db = self, collectionName = name }, Collection)
end
function Connection:useDb(name, opts)
  local cache = opts and opts.useCache
  if cache and self._children[name] then return self._children[name] end
  local child = wrap_connection(self._native:useDb(name, cache and true or false))
  if cache then self._children[name] = child end
  return child
end
function Connection:model(name, schema, collection)
  if schema == nil then
    if self._models[name] then return self._models[name] end
    self._native:model(name) -- raises the MissingSchema error
  end
  local known = self._models[name]
  local native = self._native:model(name, schema._native, collection)
  if known and known.schema == schema and (collection == nil or collection == known.collectionName) then
    return known
  end
  local coll = native:collection()
  local m = setmetatable({ _native = coll, _model = native, db = self, schema = schema, modelName = name,
                           collectionName = coll:name(), _index_listeners = {} }, Model)
  native:onIndex(function(err)
    for _, fn in ipairs(m._index_listeners) do
      local ok, msg = xpcall(fn, debug.traceback, err)
      if not ok then on_error(msg) end
    end
  end)
  self._models[name] = m
  return m
end
function Connection:deleteModel(name)
  self._native:deleteModel(name)
  self._models[name] = nil
  return self
end
function Connection:stats() return self._native:stats() end

-- ---------------------------------------------------------------------------------------------
-- the module

M.connections = {}
local default

local function default_connection()
  if not default then
    default = wrap_connection(core.connection())
    M.connections[#M.connections + 1] = default
  end
  return default
end

function M.connect(uri, opts) return default_connection():openUri(uri, opts) end
function M.createConnection(uri, opts)
  local conn = wrap_connection(core.connection(uri, options(opts)))
  M.connections[#M.connections + 1] = conn
  return conn
end
function M.disconnect(cb) return start(function(done) return core.disconnect(done) end, cb, function() return true end) end
function M.model(name, schema, collection) return default_connection():model(name, schema, collection) end
function M.deleteModel(name) return default_connection():deleteModel(name) end
function M.set(name, value) core.set({ [name] = value == nil and M.null or value }) end
function M.get(name) local v = core.get(name) if v == nil or name == "bufferTimeoutMS" then return v end return v == 1 end
function M.pluralize(name) return core.pluralize(name) end
function M.fd() return core.fd() end
--- Blocks until poll() has work or `ms` milliseconds pass (scripts; a game polls once per frame).
function M.idle(ms) return core.wait(ms or 0) end
--- A monotonic clock in milliseconds (for frame timing and deadlines).
function M.now() return core.now() end

--- Runs due callbacks and resumes coroutines; returns how many ran. Never blocks: call it once per frame.
function M.poll(max)
  local n = 0
  if #later > 0 then
    local due = later
    later = {}
    for _, fn in ipairs(due) do fn(); n = n + 1 end
  end
  return n + core.poll(max or 0)
end

--- Runs fn(...) in a coroutine, so that it can op:await(); errors go to mgconn.onError.
function M.spawn(fn, ...)
  local co = coroutine.create(fn)
  local ok, msg = coroutine.resume(co, ...)
  if not ok then on_error(debug.traceback(co, msg)) end
  return co
end

setmetatable(M, { __index = function(_, key)
  if key == "connection" then return default_connection() end
  if key == "models" then return default_connection()._models end
end })

return M
