--- mgconn: MongoDB connections for Lua (5.1 to 5.4, LuaJIT) with Mongoose's behaviour (buffering, events, models),
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

-- One source for Lua 5.1 to 5.4 and LuaJIT: written in the syntax they all accept (no integer
-- operators, no goto), with the few library differences settled here.
local unpack = table.unpack or unpack
local HAS_INTEGERS = math.type ~= nil -- 5.3+: integers; 5.1, 5.2, LuaJIT: every number a double
-- A callback's protected call with a traceback. 5.1's xpcall passes no arguments to the function
-- (LuaJIT's and 5.2's on do): there, and only there, a closure carries them.
local xcall
if select(2, xpcall(function(a) return a end, debug.traceback, true)) == true then
  xcall = function(fn, ...) return xpcall(fn, debug.traceback, ...) end
else
  xcall = function(fn, ...)
    local n, args = select("#", ...), { ... }
    return xpcall(function() return fn(unpack(args, 1, n)) end, debug.traceback)
  end
end

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

-- Before 5.4 math.random starts from the same seed in every process: a table's address (ASLR) and
-- the time are mixed in, so that two processes do not make the same ObjectIds. (Seeding math.random
-- itself would change the host's sequence.)
local oid_salt = (tonumber(tostring({}):match("0x(%x+)") or "0", 16) + os.time()) % 0x100000000
local oid_counter, oid_random = (math.random(0, 0xFFFFFF) + oid_salt) % 0x1000000, ""
for i = 1, 5 do
  oid_random = oid_random .. string.char((math.random(0, 255) + math.floor(oid_salt / 7 ^ i)) % 256)
end

-- n (0 <= n < 256^width) as `width` big-endian bytes, in arithmetic every Lua version has
local function big_endian(n, width)
  local bytes = {}
  for i = width, 1, -1 do
    bytes[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(bytes)
end

function M.ObjectId(hex)
  if hex == nil then
    oid_counter = (oid_counter + 1) % 0x1000000
    return typed("ObjectId", { bytes = big_endian(os.time() % 0x100000000, 4) .. oid_random
                                            .. big_endian(oid_counter, 3) })
  end
  assert(type(hex) == "string" and #hex == 24 and hex:match("^%x+$"), "an ObjectId is 24 hex digits")
  return typed("ObjectId", { bytes = (hex:lower():gsub("%x%x", hexmap)) })
end
-- Int64: a BSON int64 whatever its value. Where Lua has integers (5.3+) `value` is one; without
-- them (5.1, 5.2, LuaJIT) it is the exact decimal text ("-9007199254740993"): made from an integral
-- number within +-2^53, from such text, or from a LuaJIT 64-bit cdata (123LL). tostring, == and <
-- compare exactly on every version; arithmetic is the host's (tonumber(x.value) where 2^53 is enough).
local INT64_MAX, INT64_MIN = "9223372036854775807", "9223372036854775808" -- the magnitude of the min
local function canonical_int64(v)
  if type(v) == "number" then
    if v ~= math.floor(v) or math.abs(v) > 2 ^ 53 then return nil end
    return (string.format("%.0f", v):gsub("^%-0$", "0"))
  end
  if type(v) == "cdata" then v = tostring(v):gsub("U?LL$", "") end
  if type(v) ~= "string" then return nil end
  local sign, digits = v:match("^([+-]?)(%d+)$")
  if not digits then return nil end
  digits = digits:gsub("^0+", "")
  if digits == "" then return "0" end
  local limit = sign == "-" and INT64_MIN or INT64_MAX
  if #digits > #limit or (#digits == #limit and digits > limit) then return nil end
  return (sign == "-" and "-" or "") .. digits
end
function M.Int64(v)
  local value
  if HAS_INTEGERS then
    value = math.tointeger(v)
    if value == nil and type(v) == "string" and canonical_int64(v) then value = math.tointeger(tonumber(v)) end
  else
    value = canonical_int64(v)
  end
  if value == nil then error("Int64 needs an integer (an integral number, or its decimal text)", 2) end
  return typed("Int64", { value = value })
end
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
do
  local mt = registry["mgconn.Int64"]
  mt.__name = "mgconn.Int64"
  mt.__tostring = function(x) return tostring(x.value) end
  mt.__eq = function(a, b) return a.value == b.value end
  local function less(a, b, or_equal)
    local x, y = a.value, b.value
    if x == y then return or_equal end
    if HAS_INTEGERS then return x < y end
    -- canonical decimal text: by sign, then by length, then digit by digit
    local nx, ny = x:sub(1, 1) == "-", y:sub(1, 1) == "-"
    if nx ~= ny then return nx end
    local shorter = #x < #y or (#x == #y and x < y)
    if nx then return not shorter end
    return shorter
  end
  mt.__lt = function(a, b) return less(a, b, false) end
  mt.__le = function(a, b) return less(a, b, true) end
end
registry["mgconn.null"].__tostring = function() return "null" end
registry["mgconn.Error"].__tostring = function(e) return e.category .. "Error: " .. e.message end

-- ---------------------------------------------------------------------------------------------
-- errors: operational failures are tables {category, message, code, codeName, labels, reason}

local function make_error(category, message)
  return setmetatable({ category = category, message = message, code = 0, codeName = "",
                        labels = M.array(), reason = {} }, registry["mgconn.Error"])
end
local function type_error(message) return make_error("Type", message) end

-- Misuse raises at the caller's line (the first frame outside this file), naming the argument:
-- bad argument #n to 'method' (... expected, got ...).
local here = debug.getinfo(1, "S").source
local function raise_at_caller(message)
  local level = 1
  while debug.getinfo(level, "S") and debug.getinfo(level, "S").source == here do level = level + 1 end
  error(message, level)
end
local function check_arg(ok, n, method, expected, value)
  if not ok then
    raise_at_caller(string.format("bad argument #%d to '%s' (%s expected, got %s)", n, method, expected, type(value)))
  end
end
local function check_table(v, n, method, optional)
  check_arg(type(v) == "table" or (optional and v == nil), n, method, optional and "table or nil" or "table", v)
end
-- A list (insertMany's documents, aggregate's stages): a table with a key that is not an index is
-- a single document given where a list of them belongs, refused rather than read as an empty list.
local function check_list(v, n, method, what)
  check_table(v, n, method)
  for k in pairs(v) do
    if type(k) ~= "number" then
      raise_at_caller(string.format("bad argument #%d to '%s' (a list of %s expected, got a table with the key "
                                    .. "%q: wrap it, { { ... } })", n, method, what, tostring(k)))
    end
  end
end
local function check_fn(v, n, method)
  check_arg(v == nil or type(v) == "function", n, method, "function or nil", v)
end

local on_error = function(msg) io.stderr:write("mgconn: error in a callback: ", tostring(msg), "\n") end
--- Where errors raised by callbacks and listeners go (default: stderr). Dispatch goes on.
function M.onError(fn)
  check_arg(type(fn) == "function", 1, "onError", "function", fn)
  on_error = fn
  registry["mgconn.on_error"] = fn
end
registry["mgconn.on_error"] = function(msg) on_error(msg) end

-- ---------------------------------------------------------------------------------------------
-- operation handles: one object, three ways to wait

local Op = {}
Op.__index = Op

-- A result known at once (a bad value, an already-open connection) still arrives as a callback at a
-- later poll: posted through the core, so that mgconn.fd() becomes readable for it.
local function later(fn) core.post(fn) end

-- A coroutine whose end someone waits for (withTransaction's fn): its handler gets what
-- coroutine.resume returned when it ended (ok, and its results or its error). A coroutine that yields
-- in op:await() is resumed by that op's finish, not by whoever started it, so its end is seen here,
-- wherever it is resumed; and no pcall is needed around code that yields (5.1 cannot yield across one).
local on_end = setmetatable({}, { __mode = "k" })
local function resumed(co, ok, ...)
  if coroutine.status(co) == "dead" and on_end[co] then
    local handler = on_end[co]
    on_end[co] = nil
    return handler(ok, ...)
  end
  if not ok then on_error(debug.traceback(co, (...))) end
end

local function finish(op, err, result)
  op._done, op._err, op._result, op._owner = true, err, result, nil
  if op._cb then
    local ok, msg = xcall(op._cb, err, result)
    if not ok then on_error(msg) end
  end
  local waiters = op._waiters
  if waiters then
    op._waiters = nil
    for _, co in ipairs(waiters) do resumed(co, coroutine.resume(co, result, err)) end
  end
end

-- `transform` turns the C op's reply into the result the user sees (which may be nil: findOne).
-- `owner` (a collection or connection) stays reachable while the op is pending: a connection that
-- the script dropped is not collected, and closed, under its own work.
local function start(call, cb, transform, owner)
  -- _waiters (coroutines in op:await()) is made by the first await: most ops have none.
  local op = setmetatable({ _cb = cb, _done = false, _owner = owner }, Op)
  local native, message = call(function(native)
    local e = native:error()
    if e then finish(op, e, nil)
    elseif transform then finish(op, nil, transform(native))
    else finish(op, nil, native:reply()) end
  end)
  if native == nil then -- a value that cannot be converted: this operation fails, nothing is sent
    later(function() finish(op, type_error(message), nil) end)
  end
  op._native = native
  return op
end

--- Inside a coroutine started with mgconn.spawn: yields until done; returns result, or nil, err.
function Op:await()
  if not self._done then
    local co, main = coroutine.running()
    if main or co == nil then -- (5.1 gives nil on the main thread)
      error("op:await() needs a coroutine (mgconn.spawn); use op:wait() in plain scripts", 2)
    end
    local waiters = self._waiters or {}
    self._waiters = waiters
    waiters[#waiters + 1] = co
    return coroutine.yield()
  end
  if self._err then return nil, self._err end
  return self._result
end

--- Blocks (dispatching meanwhile) until done or `timeout` seconds; returns result, or nil, err.
-- It sleeps until the runtime's fd says there is work (every completion, event and later() callback
-- makes it readable) or the deadline passes: once per completion, however long the operation takes.
function Op:wait(timeout)
  local deadline = timeout and core.now() + timeout * 1000
  while not self._done do
    M.poll()
    if self._done then break end
    local left = deadline and deadline - core.now()
    if left and left <= 0 then break end
    core.wait(left and math.ceil(left) or -1)
  end
  if not self._done then
    return nil, make_error("Timeout", string.format("op:wait(%s): the operation did not finish in time; it goes on",
                                                    tostring(timeout)))
  end
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
-- `local cur <close> = coll:find(...)` (5.4) closes it at the end of the block.
Cursor.__close = function(self) self:close() end

function Cursor:_fetch(cb)
  local call
  if not self._started then
    self._started = true
    -- At maxOpenCursors a query waits for a cursor to be closed or collected: cursors the script
    -- dropped (a `for` left with break) are collected first, rather than whenever Lua's collector
    -- next runs.
    local stats = self._coll.db._native:stats()
    if stats.maxOpenCursors > 0 and stats.openCursors >= stats.maxOpenCursors then collectgarbage() end
    call = function(done) return self._coll._native:call(self._kind, self._arg, nil, self._opts, done) end
  else
    call = function(done) return self._native:next(done) end
  end
  return start(call, cb, function(native)
    local reply = native:reply()
    -- The buffer is read from _head on (taking from its front would move every document after it).
    if self._head > #self._buffer then
      self._buffer, self._head = reply.batch, 1
    else
      for _, doc in ipairs(reply.batch) do self._buffer[#self._buffer + 1] = doc end
    end
    if reply.done then self._exhausted, self._native = true, nil
    elseif not self._native then
      self._native = native:cursor()
      if self._closed then self:close() end -- closed while its first batch was on the way
    end
    return true
  end, self._coll)
end

--- Ends the cursor: the server forgets it (killCursors) and what is buffered is dropped. A cursor
--- that is only dropped is closed the same way when the garbage collector frees it.
function Cursor:close()
  self._closed, self._buffer, self._head, self._exhausted = true, {}, 1, true
  if self._native then
    self._native:close()
    self._native = nil
  end
end

--- The next document (nil at the end; nil, err on failure), waiting in a coroutine.
function Cursor:next()
  if self._head > #self._buffer and not self._exhausted then
    local co, main = coroutine.running()
    if main or co == nil then
      raise_at_caller("cursor:next() and `for doc in cursor` need a coroutine (mgconn.spawn); in a plain script "
                      .. "use cursor:toArray():wait()")
    end
    local ok, err = self:_fetch():await()
    if not ok then return nil, err end
    if self._head > #self._buffer and not self._exhausted then return self:next() end
  end
  local doc = self._buffer[self._head]
  if doc ~= nil then self._head = self._head + 1 end
  return doc
end

--- for doc in cursor:iter() do ... end, inside a coroutine. A failure raises (it has no other way out).
function Cursor:iter()
  -- The fourth value is the loop's closing value on 5.4: a `break` closes the cursor there.
  return function()
    local doc, err = self:next()
    if err then error(err, 2) end
    return doc
  end, nil, nil, self
end
--- for doc in cursor do ... end: the cursor is its own iterator (inside a coroutine).
function Cursor:__call()
  local doc, err = self:next()
  if err then error(err, 2) end
  return doc
end

--- Every document, as an op (callback, :await() or :wait()).
function Cursor:toArray(cb)
  local out = M.array()
  local result = setmetatable({ _cb = cb, _done = false }, Op)
  local function step(ok, err)
    if err then return finish(result, err, nil) end
    local buf = self._buffer
    for i = self._head, #buf do out[#out + 1] = buf[i] end
    self._buffer, self._head = {}, 1
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

local Session = {}
Session.__index = Session

-- { session = s, ... }: the core takes the session's number out of the options.
local function session_opts(opts, method)
  if opts == nil or opts.session == nil then return opts end
  local s = opts.session
  if getmetatable(s) ~= Session then
    raise_at_caller(method .. ": options.session must be a session (conn:startSession()), not " .. type(s))
  end
  if s._ended then raise_at_caller(method .. ": the session has ended") end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.session = s._native:id()
  return o
end

local function op_on(coll, name, a, b, opts, cb, transform)
  opts = session_opts(opts, name)
  return start(function(done) return coll._native:call(name, a, b, opts, done) end, cb, transform, coll)
end

-- (opts, cb) or (cb): checked, with `n` the position of opts among the method's arguments.
local function split_cb(opts, cb, n, method)
  if type(opts) == "function" and cb == nil then return nil, opts end
  check_table(opts, n, method, true)
  check_fn(cb, n + 1, method)
  return opts, cb
end

function Collection:insertOne(doc, opts, cb)
  check_table(doc, 1, "insertOne")
  opts, cb = split_cb(opts, cb, 2, "insertOne")
  return op_on(self, "insertOne", doc, nil, options(opts), cb)
end
function Collection:insertMany(docs, opts, cb)
  check_list(docs, 1, "insertMany", "documents")
  opts, cb = split_cb(opts, cb, 2, "insertMany")
  return op_on(self, "insertMany", M.array(docs), nil, options(opts), cb)
end
local function found_document(n)
  local doc = n:reply().document
  if doc == M.null then return nil end -- no match is nil, not the null value
  return doc
end
function Collection:findOne(filter, opts, cb)
  if type(filter) == "function" and opts == nil then filter, cb = nil, filter end
  check_table(filter, 1, "findOne", true)
  opts, cb = split_cb(opts, cb, 2, "findOne")
  return op_on(self, "findOne", filter or {}, nil, options(opts), cb, found_document)
end
local function update_like(method)
  return function(self, filter, update, opts, cb)
    check_table(filter, 1, method)
    check_table(update, 2, method)
    opts, cb = split_cb(opts, cb, 3, method)
    return op_on(self, method, filter, update, options(opts), cb)
  end
end
Collection.updateOne = update_like("updateOne")
Collection.updateMany = update_like("updateMany")
Collection.replaceOne = update_like("replaceOne")
function Collection:deleteOne(filter, opts, cb)
  check_table(filter, 1, "deleteOne")
  opts, cb = split_cb(opts, cb, 2, "deleteOne")
  return op_on(self, "deleteOne", filter, nil, options(opts), cb)
end
function Collection:deleteMany(filter, opts, cb)
  check_table(filter, 1, "deleteMany")
  opts, cb = split_cb(opts, cb, 2, "deleteMany")
  return op_on(self, "deleteMany", filter, nil, options(opts), cb)
end
function Collection:countDocuments(filter, opts, cb)
  if type(filter) == "function" and opts == nil then filter, cb = nil, filter end
  check_table(filter, 1, "countDocuments", true)
  opts, cb = split_cb(opts, cb, 2, "countDocuments")
  return op_on(self, "countDocuments", filter or {}, nil, options(opts), cb, function(n) return n:reply().count end)
end
function Collection:estimatedDocumentCount(cb)
  check_fn(cb, 1, "estimatedDocumentCount")
  return op_on(self, "estimatedDocumentCount", nil, nil, nil, cb, function(n) return n:reply().count end)
end
function Collection:createIndexes(indexes, cb)
  check_table(indexes, 1, "createIndexes")
  check_fn(cb, 2, "createIndexes")
  return op_on(self, "createIndexes", M.array(indexes), nil, nil, cb, function(n) return n:reply().names end)
end
function Collection:drop(cb)
  check_fn(cb, 1, "drop")
  return op_on(self, "drop", nil, nil, nil, cb, function() return true end)
end
-- Mongoose's `{"0": id}` maps keyed by a request's index become Lua tables keyed by the request's
-- position in the array given (1-based).
local function by_position(map)
  local t = {}
  for k, v in pairs(map or {}) do t[tonumber(k) + 1] = v end
  return t
end

--- Model.bulkWrite({ { insertOne = { document = d } }, { updateOne = { filter = f, update = u, upsert = true } },
--- { updateMany = ... }, { replaceOne = { filter = f, replacement = r } }, { deleteOne = { filter = f } },
--- { deleteMany = ... } }, { ordered = false }) -> { insertedCount, matchedCount, modifiedCount, deletedCount,
--- upsertedCount, insertedIds, upsertedIds } (the ids keyed by the request's position). Never sent again
--- after a fault: its outcome is then unknown.
function Collection:bulkWrite(ops, opts, cb)
  check_table(ops, 1, "bulkWrite")
  opts, cb = split_cb(opts, cb, 2, "bulkWrite")
  return op_on(self, "bulkWrite", M.array(ops), nil, options(opts), cb, function(n)
    local r = n:reply()
    r.insertedIds, r.upsertedIds = by_position(r.insertedIds), by_position(r.upsertedIds)
    return r
  end)
end

-- Mongoose's find-and-modify options onto the server's: `new` or returnDocument = "after" for the
-- document after the change, projection (or fields), sort, upsert; the rest as given.
local function fam_options(opts, method)
  if opts == nil then return nil end
  local o = {}
  for k, v in pairs(opts) do
    if k == "returnDocument" then
      check_arg(v == "before" or v == "after", 3, method, '"before" or "after"', v)
      o.new = v == "after"
    elseif k == "projection" then o.fields = v
    else o[k] = v end
  end
  return options(o)
end
local function found_document(n)
  local doc = n:reply().document
  if doc == M.null then return nil end
  return doc
end
local function find_and_modify(method)
  return function(self, filter, doc, opts, cb)
    check_table(filter, 1, method)
    check_table(doc, 2, method)
    opts, cb = split_cb(opts, cb, 3, method)
    return op_on(self, method, filter, doc, fam_options(opts, method), cb, found_document)
  end
end
--- findOneAndUpdate(filter, update, { new = true | returnDocument = "after", projection, sort, upsert })
--- -> the document (before the change unless asked otherwise), or nil when nothing matched.
Collection.findOneAndUpdate = find_and_modify("findOneAndUpdate")
--- findOneAndReplace(filter, replacement, opts): as findOneAndUpdate.
Collection.findOneAndReplace = find_and_modify("findOneAndReplace")
--- findOneAndDelete(filter, { projection, sort }) -> the document deleted, or nil.
function Collection:findOneAndDelete(filter, opts, cb)
  if type(filter) == "function" and opts == nil then filter, cb = nil, filter end
  check_table(filter, 1, "findOneAndDelete", true)
  opts, cb = split_cb(opts, cb, 2, "findOneAndDelete")
  return op_on(self, "findOneAndDelete", filter or {}, nil, fam_options(opts, "findOneAndDelete"), cb,
               found_document)
end
--- distinct(field, filter) -> the array of the field's distinct values among the matching documents.
function Collection:distinct(field, filter, opts, cb)
  if type(filter) == "function" and opts == nil then filter, cb = nil, filter end
  check_arg(type(field) == "string", 1, "distinct", "string", field)
  check_table(filter, 2, "distinct", true)
  opts, cb = split_cb(opts, cb, 3, "distinct")
  local o = { key = field }
  for k, v in pairs(opts or {}) do o[k] = v end
  return op_on(self, "distinct", filter or {}, nil, o, cb, function(n) return n:reply().values end)
end
--- findById(id, opts) -> the document whose _id is id, or nil (Mongoose's).
function Collection:findById(id, opts, cb)
  check_arg(id ~= nil, 1, "findById", "an _id", id)
  return self:findOne({ _id = id }, opts, cb)
end
--- findByIdAndUpdate(id, update, opts): findOneAndUpdate on { _id = id }.
function Collection:findByIdAndUpdate(id, update, opts, cb)
  check_arg(id ~= nil, 1, "findByIdAndUpdate", "an _id", id)
  return self:findOneAndUpdate({ _id = id }, update, opts, cb)
end
--- findByIdAndDelete(id, opts): findOneAndDelete on { _id = id }.
function Collection:findByIdAndDelete(id, opts, cb)
  check_arg(id ~= nil, 1, "findByIdAndDelete", "an _id", id)
  return self:findOneAndDelete({ _id = id }, opts, cb)
end
--- exists(filter) -> { _id = id } of the first match, or nil (Mongoose's).
function Collection:exists(filter, cb)
  check_table(filter, 1, "exists")
  return self:findOne(filter, { projection = { _id = 1 } }, cb)
end
--- listIndexes() -> the array of the collection's index documents ({ v, key, name, ... }).
function Collection:listIndexes(cb)
  check_fn(cb, 1, "listIndexes")
  return op_on(self, "listIndexes", nil, nil, nil, cb, function(n) return n:reply().indexes end)
end
--- dropIndex(name or keys) -> true; IndexNotFound when there is none such.
function Collection:dropIndex(index, cb)
  check_arg(type(index) == "string" or type(index) == "table", 1, "dropIndex", "index name or keys table", index)
  check_fn(cb, 2, "dropIndex")
  return op_on(self, "dropIndexes", nil, nil, { index = index }, cb, function() return true end)
end
--- dropIndexes() -> true: every index but _id_ dropped.
function Collection:dropIndexes(cb)
  check_fn(cb, 1, "dropIndexes")
  return op_on(self, "dropIndexes", nil, nil, nil, cb, function() return true end)
end
function Collection:find(filter, opts)
  check_table(filter, 1, "find", true)
  check_table(opts, 2, "find", true)
  return setmetatable({ _coll = self, _kind = "find", _arg = filter or {}, _opts = session_opts(options(opts), "find"),
                        _buffer = {}, _head = 1 }, Cursor)
end
function Collection:aggregate(pipeline, opts)
  check_list(pipeline, 1, "aggregate", "stages")
  check_table(opts, 2, "aggregate", true)
  return setmetatable({ _coll = self, _kind = "aggregate", _arg = M.array(pipeline),
                        _opts = session_opts(options(opts), "aggregate"), _buffer = {}, _head = 1 }, Cursor)
end

-- change streams

local ChangeStream = {}
ChangeStream.__index = ChangeStream
ChangeStream.__close = function(self) self:close() end

-- A read that failed for these leaves the stream open: the connection was down, and the next read
-- resumes it after the last change seen. Any other failure closes it.
local CONNECTION_DOWN = { BufferTimeout = true, Network = true, ServerSelection = true, NotConnected = true,
                          ConnectionClosed = true }

-- Ends the stream: its server cursor is killed and nothing more is read.
local function end_stream(self)
  self._closed, self._buffer = true, {}
  if self._native then
    self._native:close()
    self._native = nil
  end
end

-- One batch into the buffer; `open` starts the stream the first time, or again after it could not
-- be opened.
function ChangeStream:_fetch(cb)
  local call, op
  if not self._native then
    call = self._open
  else
    call = function(done) return self._native:next(done) end
  end
  local function after(err, result)
    if self._in_flight == op then self._in_flight = nil end
    if self._by_caller then err = nil end -- close() ended this read: it ends with nothing
    if err and not CONNECTION_DOWN[err.category] then end_stream(self) end
    if cb then cb(err, result) end
  end
  op = start(call, after, function(native)
    if self._by_caller then -- closed while this batch was on the way: its cursor goes too
      local cursor = native:cursor()
      if cursor then cursor:close() end
      return true
    end
    local reply = native:reply()
    for _, change in ipairs(reply.batch) do self._buffer[#self._buffer + 1] = change end
    self._batch_token = reply.resumeToken or self._batch_token
    if #self._buffer == 0 then self._token = self._batch_token end
    if reply.done then self._ended, self._native = true, nil -- invalidated: the collection was dropped
    elseif not self._native then
      self._native = native:cursor()
    end
    return true
  end, self._owner)
  self._in_flight = op
  return op
end

-- The next change; the resume token is then its _id, or the batch's once the batch is read.
local function take(self)
  local change = table.remove(self._buffer, 1)
  if change ~= nil then
    self._token = #self._buffer == 0 and self._batch_token or change._id or self._token
  end
  return change
end

-- The batch opened with the stream the first time, then the next one; cb(err) once it is in.
function ChangeStream:_read(cb)
  if self._pending then
    self._pending = nil
    if self._pending_done then later(function() cb(self._pending_err) end) else self._pending_k = cb end
    return
  end
  self:_fetch(cb)
end

-- Nothing more to read: ended by the server, closed, or failed (and its first batch taken).
local function over(self) return (self._ended or self._closed) and not self._pending end

--- stream:tryNext([cb]) -> op: the next change, or nil when a batch (up to maxAwaitTimeMS on the
--- server) brought none.
function ChangeStream:tryNext(cb)
  check_fn(cb, 1, "tryNext")
  local result = setmetatable({ _cb = cb, _done = false }, Op)
  if #self._buffer > 0 or over(self) then
    later(function() finish(result, nil, take(self)) end)
    return result
  end
  self:_read(function(err) if err then finish(result, err, nil) else finish(result, nil, take(self)) end end)
  return result
end

--- stream:next([cb]) -> op: the next change, waiting for one (nil once the stream has ended).
function ChangeStream:next(cb)
  check_fn(cb, 1, "next")
  local result = setmetatable({ _cb = cb, _done = false }, Op)
  local function step(err)
    if err then return finish(result, err, nil) end
    if #self._buffer > 0 or over(self) then return finish(result, nil, take(self)) end
    self:_read(step)
  end
  if #self._buffer > 0 or over(self) then later(function() step(nil) end) else self:_read(step) end
  return result
end

--- stream:on("change", fn) calls fn(change) for every change, in order, from poll(); on("error", fn)
--- gets each failed read (Mongoose's ChangeStream events): one that closed the stream, or, while the
--- connection is down, each BufferTimeout (reading then goes on). Reading starts with the first
--- "change" listener.
function ChangeStream:on(event, fn)
  check_arg(event == "change" or event == "error", 1, "on", '"change" or "error"', event)
  check_arg(type(fn) == "function", 2, "on", "function", fn)
  self._listeners[event] = self._listeners[event] or {}
  table.insert(self._listeners[event], fn)
  if event == "change" and not self._reading then
    self._reading = true
    local function deliver(err)
      if err then
        for _, f in ipairs(self._listeners.error or {}) do
          local ok, msg = xcall(f, err)
          if not ok then on_error(msg) end
        end
        -- The connection was down: the stream is still open, and reading goes on (each try waits
        -- bufferTimeoutMS for the reconnect). Any other failure closed it.
        if self._closed then self._reading = false return end
        return self:_read(deliver)
      end
      if self._closed then return end
      while #self._buffer > 0 do
        local change = take(self)
        for _, f in ipairs(self._listeners.change or {}) do
          local ok, msg = xcall(f, change)
          if not ok then on_error(msg) end
        end
        if self._closed then return end
      end
      if self._ended then self._reading = false return end
      self:_read(deliver)
    end
    self:_read(deliver)
  end
  return self
end

--- The token to resume after: the _id of the last change returned, or the server's once a batch is read
--- to its end (start a later stream after it: { resumeAfter = t }).
function ChangeStream:resumeToken() return self._token end

--- Ends the stream: the server forgets its cursor and nothing more is read. A read waiting for its
--- batch ends too, with nil.
function ChangeStream:close()
  self._by_caller = true
  if self._in_flight then self._in_flight:cancel() end -- not sent yet (buffered): it ends now
  end_stream(self)
end

-- A stream of `owner` (a collection or a connection); open(stages, opts, done) starts it.
local function new_stream(owner, pipeline, opts, open)
  if pipeline ~= nil then check_list(pipeline, 1, "watch", "stages") end
  check_table(opts, 2, "watch", true)
  local o = session_opts(options(opts), "watch")
  local stages = pipeline and M.array(pipeline) or nil
  local stream = setmetatable({ _owner = owner, _open = function(done) return open(stages, o, done) end,
                                _buffer = {}, _listeners = {} }, ChangeStream)
  -- Opened at once, as Mongoose's is: the changes from now on are the stream's, and a bad option
  -- raises here. The first read takes this batch.
  stream._pending = stream:_fetch(function(err)
    stream._pending_done, stream._pending_err = true, err
    local k = stream._pending_k
    stream._pending_k = nil
    if k then k(err) end
  end)
  return stream
end

--- coll:watch([pipeline], [opts]) -> a change stream over the collection (Mongoose's Model.watch()).
--- opts: fullDocument ("updateLookup"), fullDocumentBeforeChange, resumeAfter, startAfter,
--- startAtOperationTime, batchSize, maxAwaitTimeMS, session. It opens at once.
function Collection:watch(pipeline, opts)
  return new_stream(self, pipeline, opts, function(stages, o, done)
    return self._native:call("watch", stages, nil, o, done)
  end)
end

local Model = setmetatable({}, { __index = Collection })
Model.__index = Model

function Model:init(cb)
  check_fn(cb, 1, "init")
  return start(function(done) return self._model:init(done) end, cb, function() return true end, self)
end
--- Creates the model's collection with its schema's capped and collation options (Mongoose's
--- Model.createCollection(), for models with autoCreate off).
function Model:createCollection(cb)
  local so, opts = self.schema.options, {}
  if type(so.capped) == "table" then
    opts.capped, opts.size, opts.max = true, so.capped.size, so.capped.max
  elseif so.capped then
    opts.capped, opts.size = true, so.capped
  end
  opts.collation = so.collation
  return self.db:createCollection(self.collectionName, opts, cb)
end
--- Mongoose's Model.syncIndexes(): creates the schema's indexes, then drops every other index of the
--- collection but _id_; the array of the names dropped.
function Model:syncIndexes(cb)
  check_fn(cb, 1, "syncIndexes")
  return start(function(done) return self._model:syncIndexes(done) end, cb, function(n) return n:reply().dropped end,
               self)
end
-- Listeners are the core's registrations (native:listen, in order, once included); the object only
-- anchors each function under its registration key, and drops the anchors the core no longer uses.
local function anchor(object, key, fn)
  for k in pairs(object._anchors) do
    if not object._listen_native:listening(k) then object._anchors[k] = nil end
  end
  object._anchors[key] = fn
end
local function model_listen(self, fn, once)
  anchor(self, self._model:listen(fn, once), fn)
  return self
end
function Model:on(event, fn)
  if event ~= "index" then error("a model's only event is 'index', not '" .. tostring(event) .. "'", 2) end
  check_arg(type(fn) == "function", 2, "on", "function", fn)
  return model_listen(self, fn, false)
end
function Model:once(event, fn)
  if event ~= "index" then error("a model's only event is 'index', not '" .. tostring(event) .. "'", 2) end
  check_arg(type(fn) == "function", 2, "once", "function", fn)
  return model_listen(self, fn, true)
end
function Model:off(event, fn)
  if event == "index" and type(fn) == "function" then self._model:unlisten(fn) end
  return self
end

-- ---------------------------------------------------------------------------------------------
-- schemas

local Schema = {}
Schema.__index = Schema

local function describe(v)
  if type(v) == "table" then
    if v[1] ~= nil then -- { "string" }: an array whose elements are of that type
      local t = M.array()
      for i, x in ipairs(v) do t[i] = describe(x) end
      return t
    end
    local t = {}
    for k, x in pairs(v) do t[tostring(k)] = describe(x) end
    return t
  elseif type(v) == "function" then return "function"
  end
  return v
end

--- mgconn.Schema({ name = "string" }, { bufferCommands = true, capped = 4096, collection = "people" })
function M.Schema(definition, opts)
  check_table(definition, 1, "Schema", true)
  check_table(opts, 2, "Schema", true)
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

-- Connections the script can still reach, in creation order (mgconn.connections): weak, so that a
-- connection the script dropped is collected (its native handle's __gc closes it), and a closed one
-- leaves the list.
local live, live_seq = setmetatable({}, { __mode = "k" }), 0
local default -- the module's own connection (mgconn.connect, mgconn.model): always listed
local function list_live()
  local out = {}
  for conn in pairs(live) do out[#out + 1] = conn end
  table.sort(out, function(a, b) return live[a] < live[b] end)
  return out
end
local function track(conn)
  if not live[conn] then live_seq = live_seq + 1; live[conn] = live_seq end
end

-- The core's listener table holds each listener function for as long as the native handle lives;
-- a function must not hold its connection or model, or none would ever be collected. It holds a
-- number, looked up here: one weak table for all of them (a weak table each would make every
-- garbage-collection cycle's atomic step walk thousands of tables).
local by_number, last_number = setmetatable({}, { __mode = "v" }), 0
local function weakly(object)
  last_number = last_number + 1
  by_number[last_number] = object
  return last_number
end

-- The handle's dispatcher: the core's registration `key` heard an event; its function is called
-- (a connection's dispatcher is given the event's name first, a model's is not).
local function call_anchored(number, err, key)
  local object = by_number[number]
  local fn = object and object._anchors[key]
  if fn then
    local ok, msg = xcall(fn, err)
    if not ok then on_error(msg) end
  end
end

local function wrap_connection(native)
  local conn = setmetatable({ _native = native, _listen_native = native, _anchors = {}, _models = {},
                              _children = {} }, Connection)
  local number = weakly(conn)
  native:onEvent(function(_, err, key) call_anchored(number, err, key) end)
  local untrack = function() if conn ~= default then live[conn] = nil end end
  anchor(conn, native:listen("close", untrack), untrack)
  return conn
end

local function listen(self, event, fn, once)
  local ok, key = pcall(self._native.listen, self._native, event, fn, once)
  if not ok then error(key, 3) end
  anchor(self, key, fn)
  return self
end
-- (the argument checks stand in the methods themselves: their errors point at the caller's line)
function Connection:on(event, fn)
  check_arg(type(fn) == "function", 2, "on", "function", fn)
  return listen(self, event, fn, false)
end
function Connection:once(event, fn)
  check_arg(type(fn) == "function", 2, "once", "function", fn)
  return listen(self, event, fn, true)
end
function Connection:off(event, fn)
  if type(event) == "string" and type(fn) == "function" then self._native:unlisten(event, fn) end
  return self
end

--- An op that completes with the connection once it is open, or fails with the connect error, or
--- with ConnectionClosed once the connection is closed (at once if it is closed).
function Connection:asPromise(cb)
  check_fn(cb, 1, "asPromise")
  return start(function(done) return self._native:whenOpen(done) end, cb, function() return self end, self)
end

function Connection:openUri(uri, opts, cb)
  if type(opts) == "function" and cb == nil then opts, cb = nil, opts end
  check_arg(type(uri) == "string", 1, "openUri", "string", uri)
  check_table(opts, 2, "openUri", true)
  check_fn(cb, 3, "openUri")
  self._native:open(uri, options(opts))
  track(self)
  if cb then self:asPromise(cb) end -- as Mongoose: cb(err, conn) once open (or failed)
  return self
end
function Connection:close(force, cb)
  if type(force) == "function" and cb == nil then force, cb = false, force end
  check_fn(cb, 2, "close")
  if self._cache then self._cache.parent._children[self._cache.name] = nil end -- useDb makes a new one
  return start(function(done) return self._native:close(force and true or false, done) end, cb,
               function() return true end, self)
end
function Connection:__close() self._native:free() end
function Connection:runCommand(cmd, db, cb)
  if type(db) == "function" and cb == nil then db, cb = nil, db end
  check_table(cmd, 1, "runCommand")
  check_arg(db == nil or type(db) == "string", 2, "runCommand", "string or nil", db)
  check_fn(cb, 3, "runCommand")
  return start(function(done) return self._native:runCommand(cmd, db, done) end, cb, nil, self)
end
function Connection:createCollection(name, opts, cb)
  check_arg(type(name) == "string", 1, "createCollection", "string", name)
  opts, cb = split_cb(opts, cb, 2, "createCollection")
  return start(function(done) return self._native:createCollection(name, options(opts), done) end, cb,
               function() return self:collection(name) end, self)
end
function Connection:dropDatabase(cb)
  check_fn(cb, 1, "dropDatabase")
  return start(function(done) return self._native:dropDatabase(done) end, cb, function() return true end, self)
end
--- Command monitoring: conn:onCommand({ started = fn, succeeded = fn, failed = fn }) (any of the
--- three) or conn:onCommand(fn) for every event; nil removes it. Each event is a table: type,
--- commandName, databaseName, requestId, operationId, serverAddress ("host:port"), with command
--- (started), durationMicros and reply (succeeded, failed), code and failure (failed). A sensitive
--- command (authentication, user management) has empty command and reply tables. The connection's
--- use_db children's commands arrive here too; a child itself takes no listener.
function Connection:onCommand(handlers)
  if handlers == nil then self._native:onCommand(nil); return self end
  check_arg(type(handlers) == "table" or type(handlers) == "function", 1, "onCommand",
            "function or table of started/succeeded/failed functions", handlers)
  local fn = handlers
  if type(handlers) == "table" then
    for k, v in pairs(handlers) do
      if k ~= "started" and k ~= "succeeded" and k ~= "failed" then
        error("onCommand: the events are started, succeeded and failed, not '" .. tostring(k) .. "'", 2)
      end
      check_arg(type(v) == "function", 1, "onCommand", "function for " .. k, v)
    end
    fn = function(event)
      local h = handlers[event.type]
      if h then h(event) end
    end
  end
  self._native:onCommand(fn)
  return self
end
--- listCollections() -> the array of the database's collections ({ name, type, options, ... }).
function Connection:listCollections(filter, cb)
  if type(filter) == "function" and cb == nil then filter, cb = nil, filter end
  check_table(filter, 1, "listCollections", true)
  check_fn(cb, 2, "listCollections")
  return start(function(done) return self._native:list("collections", options(filter), nil, done) end, cb,
               function(n) return n:reply().collections end, self)
end
--- dropCollection(name) -> true; a collection that is not there is no error.
function Connection:dropCollection(name, cb)
  check_arg(type(name) == "string", 1, "dropCollection", "string", name)
  check_fn(cb, 2, "dropCollection")
  return self:collection(name):drop(cb)
end
--- listDatabases() -> { databases = { { name, sizeOnDisk, empty }, ... }, totalSize } (the server's reply).
function Connection:listDatabases(cb)
  check_fn(cb, 1, "listDatabases")
  return start(function(done) return self._native:list("databases", nil, nil, done) end, cb, nil, self)
end
-- sessions and transactions

--- conn:startSession({ causalConsistency, defaultTransactionOptions }) -> session (Mongoose's): pass it
--- as { session = s } in an operation's options. Sends nothing; it holds one of the pool's clients from
--- its first operation until session:endSession().
function Connection:startSession(opts)
  check_table(opts, 1, "startSession", true)
  return setmetatable({ _native = self._native:startSession(options(opts)), _conn = self, _ended = false }, Session)
end

--- session:startTransaction({ readConcern, writeConcern, maxCommitTimeMS }): the operations issued in the
--- session until commitTransaction() or abortTransaction() run in one transaction.
function Session:startTransaction(opts)
  check_table(opts, 1, "startTransaction", true)
  if self._ended then raise_at_caller("startTransaction: the session has ended") end
  self._native:startTransaction(options(opts))
  return self
end
function Session:inTransaction() return not self._ended and self._native:inTransaction() end
--- commitTransaction([cb]) -> op; an error with the label UnknownTransactionCommitResult may be retried.
function Session:commitTransaction(cb)
  check_fn(cb, 1, "commitTransaction")
  if self._ended then raise_at_caller("commitTransaction: the session has ended") end
  return start(function(done) return self._native:commit(done) end, cb, function() return true end, self._conn)
end
function Session:abortTransaction(cb)
  check_fn(cb, 1, "abortTransaction")
  if self._ended then raise_at_caller("abortTransaction: the session has ended") end
  return start(function(done) return self._native:abort(done) end, cb, function() return true end, self._conn)
end
--- endSession(): its operations still run first, then an open transaction is aborted.
function Session:endSession()
  if not self._ended then
    self._ended = true
    self._native:free()
  end
end
Session.__close = Session.endSession

local function has_label(err, label)
  if type(err) ~= "table" or type(err.labels) ~= "table" then return false end
  for _, l in ipairs(err.labels) do if l == label then return true end end
  return false
end

-- The drivers' convenient transaction API gives up after 120 seconds.
local WITH_TRANSACTION_LIMIT_MS = 120000

--- session:withTransaction(fn, [opts], [cb]) -> op: fn(session) runs in a coroutine (it may op:await())
--- inside a transaction, which is committed; the whole transaction runs again after an error labelled
--- TransientTransactionError, the commit again after UnknownTransactionCommitResult, for 120 s at most.
--- fn raises (error(err)) to abort. The op's result is fn's first return value.
function Session:withTransaction(fn, opts, cb)
  check_arg(type(fn) == "function", 1, "withTransaction", "function", fn)
  opts, cb = split_cb(opts, cb, 2, "withTransaction")
  local op = setmetatable({ _cb = cb, _done = false, _owner = self._conn }, Op)
  local session, started_at = self, core.now()
  local attempt
  local function within() return core.now() - started_at < WITH_TRANSACTION_LIMIT_MS end
  local function commit(result)
    session:commitTransaction(function(err)
      if not err then return finish(op, nil, result) end
      if within() and has_label(err, "UnknownTransactionCommitResult") and err.code ~= 50 then -- 50: MaxTimeMSExpired
        return commit(result)
      end
      if within() and has_label(err, "TransientTransactionError") then return attempt() end
      finish(op, err, nil)
    end)
  end
  local function failed(err)
    if has_label(err, "TransientTransactionError") and within() then return attempt() end
    finish(op, err, nil)
  end
  function attempt()
    session:startTransaction(opts)
    local co = coroutine.create(fn)
    on_end[co] = function(ok, result)
      if not ok then
        if session:inTransaction() then return session:abortTransaction(function() failed(result) end) end
        return failed(result)
      end
      if not session:inTransaction() then return finish(op, nil, result) end -- fn committed or aborted itself
      commit(result)
    end
    resumed(co, coroutine.resume(co, session))
  end
  attempt()
  return op
end

--- conn:transaction(fn, [opts], [cb]) -> op (Mongoose's): withTransaction on a new session, ended after.
function Connection:transaction(fn, opts, cb)
  check_arg(type(fn) == "function", 1, "transaction", "function", fn)
  opts, cb = split_cb(opts, cb, 2, "transaction")
  local session = self:startSession()
  return session:withTransaction(fn, opts, function(err, result)
    session:endSession()
    if cb then cb(err, result) end
  end)
end

--- conn:watch([pipeline], [opts]) -> a change stream over every collection of the database
--- (Mongoose's conn.watch()); as coll:watch.
function Connection:watch(pipeline, opts)
  return new_stream(self, pipeline, opts, function(stages, o, done) return self._native:watch(stages, o, done) end)
end

function Connection:collection(name)
  check_arg(type(name) == "string", 1, "collection", "string", name)
  return setmetatable({ _native = self._native:collection(name), db = self, collectionName = name }, Collection)
end
function Connection:useDb(name, opts)
  check_arg(type(name) == "string", 1, "useDb", "string", name)
  check_table(opts, 2, "useDb", true)
  local cache = opts and opts.useCache
  if cache and self._children[name] then return self._children[name] end
  local child = wrap_connection(self._native:useDb(name, cache and true or false))
  if cache then
    self._children[name] = child
    child._cache = { parent = self, name = name }
  end
  return child
end
function Connection:model(name, schema, collection)
  check_arg(type(name) == "string", 1, "model", "string", name)
  check_arg(schema == nil or getmetatable(schema) == Schema, 2, "model", "mgconn.Schema or nil", schema)
  check_arg(collection == nil or type(collection) == "string", 3, "model", "string or nil", collection)
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
  local m = setmetatable({ _native = coll, _model = native, _listen_native = native, _anchors = {}, db = self,
                           schema = schema, modelName = name, collectionName = coll:name() }, Model)
  local number = weakly(m) -- the registry's dispatcher must not keep the model alive
  native:onIndex(function(err, key) call_anchored(number, err, key) end)
  self._models[name] = m
  return m
end
function Connection:deleteModel(name)
  self._native:deleteModel(name)
  self._models[name] = nil
  return self
end
--- The names of the models registered on this connection (Mongoose's modelNames()).
function Connection:modelNames()
  local out = {}
  for name in pairs(self._models) do out[#out + 1] = name end
  table.sort(out)
  return out
end
function Connection:stats() return self._native:stats() end

-- ---------------------------------------------------------------------------------------------
-- the module

--- Every connection still open or opening that the script can reach (the default one always), in
--- creation order. Read-only. Where `#` and ipairs see through a proxy's metamethods (5.2 on) it is
--- one live view; on 5.1 and LuaJIT each read of mgconn.connections is a fresh list.
local connections_proxy = setmetatable({}, {
  __index = function(_, i) return list_live()[i] end,
  __len = function() return #list_live() end,
  __pairs = function() return ipairs(list_live()) end,
  __ipairs = function() return ipairs(list_live()) end, -- 5.2's ipairs is raw but for this
  __newindex = function() error("mgconn.connections is read-only", 2) end,
})
local proxy_len_works = #setmetatable({}, { __len = function() return 1 end }) == 1
local function default_connection()
  if not default then
    default = wrap_connection(core.connection())
    track(default)
  end
  return default
end

function M.connect(uri, opts, cb) return default_connection():openUri(uri, opts, cb) end
--- createConnection(uri, [opts], [cb]): cb(err, conn) is called once the connection is open or failed.
function M.createConnection(uri, opts, cb)
  if type(opts) == "function" and cb == nil then opts, cb = nil, opts end
  check_arg(uri == nil or type(uri) == "string", 1, "createConnection", "string or nil", uri)
  check_table(opts, 2, "createConnection", true)
  check_fn(cb, 3, "createConnection")
  local conn = wrap_connection(core.connection(uri, options(opts)))
  track(conn)
  if cb then conn:asPromise(cb) end
  return conn
end
function M.disconnect(cb)
  check_fn(cb, 1, "disconnect")
  return start(function(done) return core.disconnect(done) end, cb, function() return true end)
end
function M.model(name, schema, collection) return default_connection():model(name, schema, collection) end
function M.deleteModel(name) return default_connection():deleteModel(name) end

-- Log lines (mgconn's and libmongoc's, passwords masked) reach the core's handler in dispatch.
local LEVELS = { "error", "warning", "info", "debug" }
local logger, debug_fn
local function log_handler(level, domain, message)
  if domain == "debug" and debug_fn then return debug_fn(message) end
  if logger then return logger(LEVELS[level] or "debug", domain, message) end
  if domain == "debug" then io.stderr:write(message, "\n")
  else io.stderr:write("mgconn ", LEVELS[level] or "debug", " [", domain, "]: ", message, "\n") end
end
registry["mgconn.log_handler"] = log_handler
--- Routes mgconn's and libmongoc's log lines into the game's logger: fn(level, domain, message),
--- level one of "error", "warning", "info", "debug" (debug lines: domain "debug"). nil: stderr again.
function M.setLogger(fn)
  check_fn(fn, 1, "setLogger")
  logger = fn
end

--- mgconn.set(name, value); set("debug", fn) turns debug lines on and hands each to fn(line).
function M.set(name, value)
  check_arg(type(name) == "string", 1, "set", "string", name)
  if name == "debug" then
    debug_fn = type(value) == "function" and value or nil
    if debug_fn then value = true end
  end
  core.set({ [name] = value == nil and M.null or value })
end
function M.get(name) local v = core.get(name) if v == nil or name == "bufferTimeoutMS" then return v end return v == 1 end
function M.pluralize(name) return core.pluralize(name) end
function M.fd() return core.fd() end
--- Blocks until poll() has work or `ms` milliseconds pass (scripts; a game polls once per frame).
function M.idle(ms) return core.wait(ms or 0) end
--- A monotonic clock in milliseconds (for frame timing and deadlines).
function M.now() return core.now() end

--- Runs due callbacks and resumes coroutines; returns how many ran. Never blocks: call it once per frame.
function M.poll(max)
  check_arg(max == nil or type(max) == "number", 1, "poll", "number or nil", max)
  return core.poll(max or 0)
end

--- Runs fn(...) in a coroutine, so that it can op:await(); errors go to mgconn.onError.
function M.spawn(fn, ...)
  check_arg(type(fn) == "function", 1, "spawn", "function", fn)
  local co = coroutine.create(fn)
  resumed(co, coroutine.resume(co, ...))
  return co
end

setmetatable(M, { __index = function(_, key)
  if key == "connection" then return default_connection() end
  if key == "models" then return default_connection()._models end
  if key == "connections" then return proxy_len_works and connections_proxy or list_live() end
end, __newindex = function(t, key, value)
  if key == "connections" then error("mgconn.connections is read-only", 2) end
  rawset(t, key, value)
end })

return M
