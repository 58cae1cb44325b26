-- A schema's declared field types are checked on a model's writes: a value of another type fails
-- that operation with a Validation error naming the path and both types, and nothing is sent.
local mgconn = require "mgconn"
local H = require "helper"

describe("schema field types", function()
  local server, conn, Player

  setup(function()
    server = H.server()
    conn = mgconn.createConnection(server.uri .. "schema_types")
    conn:asPromise():wait(10)
    Player = conn:model("Player", mgconn.Schema({ name = "string", score = "number", born = "Date",
                                                  tags = { "string" }, home = { city = "string" } }))
    Player:deleteMany({}):wait(10)
  end)
  teardown(function()
    conn:close():wait(10)
    server.stop()
  end)

  local function count() return Player:countDocuments({}):wait(10) end

  it("refuses an insert whose declared string is a number, naming the path and both types", function()
    local res, err = Player:insertOne({ name = 5 }):wait(10)
    assert.is_nil(res)
    assert.are.equal("Validation", err.category)
    assert.are.equal("Cannot run `players.insertOne()`: Player validation failed: path `name` is declared string "
                     .. "and got int32 (a schema's types are checked, never cast); nothing was sent", err.message)
    assert.are.equal(0, count())
    -- the connection goes on: a right document is stored
    assert.truthy(Player:insertOne({ name = "ada", score = 1.5, tags = mgconn.array({ "a" }) }):wait(10))
    assert.are.equal(1, count())
    Player:deleteMany({}):wait(10)
  end)

  it("refuses a mistyped type name when the schema is made, naming the path", function()
    local ok, err = pcall(mgconn.Schema, { name = "string", score = "nubmer" })
    assert.is_false(ok)
    assert.truthy(tostring(err.message or err):find("`nubmer` is not a valid type at path `score`; did you mean number?",
                                                    1, true), tostring(err.message or err))
    ok, err = pcall(mgconn.Schema, { home = { city = { type = "Strng" } } })
    assert.is_false(ok)
    assert.truthy(tostring(err.message or err):find("at path `home.city`", 1, true))
    assert.truthy(pcall(mgconn.Schema, { meta = "Mixed", any = "Any" })) -- far from every type: unchecked
  end)

  it("reports the failure through the callback, as every result", function()
    local got
    Player:insertOne({ name = "ada", score = "high" }, function(err) got = err end)
    assert.is_nil(got) -- not called before poll()
    assert.truthy(H.until_true(function() return got end, 10))
    assert.are.equal("Validation", got.category)
    assert.truthy(got.message:find("path `score` is declared number and got string", 1, true))
  end)

  it("checks every document of insertMany, nested paths and array elements", function()
    local _, err = Player:insertMany({ { name = "a" }, { name = "b", tags = mgconn.array({ "x", 7 }) } }):wait(10)
    assert.are.equal("Validation", err.category)
    assert.truthy(err.message:find("document 1: path `tags.1` is declared string and got int32", 1, true))
    _, err = Player:insertOne({ name = "c", home = { city = true } }):wait(10)
    assert.truthy(err.message:find("path `home.city` is declared string and got boolean", 1, true))
    assert.are.equal(0, count())
  end)

  it("checks $set and $setOnInsert values of declared paths in updates, and replacements", function()
    Player:insertOne({ _id = 1, name = "ada" }):wait(10)
    local _, err = Player:updateOne({ _id = 1 }, { ["$set"] = { name = 42 } }):wait(10)
    assert.are.equal("Validation", err.category)
    assert.truthy(err.message:find("players.updateOne()", 1, true))
    assert.truthy(err.message:find("path `name` is declared string and got int32", 1, true))
    _, err = Player:updateMany({}, { ["$set"] = { ["home.city"] = 1 } }):wait(10)
    assert.truthy(err.message:find("path `home.city` is declared string", 1, true))
    _, err = Player:replaceOne({ _id = 1 }, { name = { first = "ada" } }):wait(10)
    assert.truthy(err.message:find("path `name` is declared string and got document", 1, true))
    assert.are.equal("ada", Player:findOne({ _id = 1 }):wait(10).name)
    -- undeclared paths, other operators and null are not checked
    assert.truthy(Player:updateOne({ _id = 1 }, { ["$set"] = { level = "x", score = mgconn.null },
                                                  ["$inc"] = { n = 1 } }):wait(10))
    Player:deleteMany({}):wait(10)
  end)
end)
