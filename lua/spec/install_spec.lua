-- The README's install command, run as written (into a tree of the spec's own), installs the
-- module and only the module.
local root = os.getenv("MGCONN_SOURCE_DIR") or "."

describe("install (luarocks make)", function()
  it("runs the README's command as written and installs only mgconn.lua and mgconn/core.so", function()
    -- the interpreter the specs run under: its version in luarocks' spelling (LuaJIT is 5.1)
    local version = _VERSION:match("%d+%.%d+")
    local command
    for line in io.lines(root .. "/README.md") do
      command = command or line:match("^### Lua 5%.1 to 5%.4 and LuaJIT %(`(luarocks [^`]+)`%)")
    end
    assert.truthy(command, "the README names no luarocks command")
    command = command:gsub("%-%-lua%-version=5%.4", "--lua-version=" .. version)
    local tree = os.tmpname()
    os.remove(tree)
    local p = io.popen(string.format("cd %s && %s --tree %s 2>&1; echo rc=$?", root, command, tree))
    local out = p:read("*a")
    p:close()
    assert.truthy(out:find("rc=0", 1, true), out)
    local files = {}
    p = io.popen("cd " .. tree .. " && find share lib -type f -not -path 'lib/luarocks/*' | sort")
    for f in p:lines() do files[#files + 1] = f end
    p:close()
    os.execute("rm -rf " .. tree)
    assert.are.same({ "lib/lua/" .. version .. "/mgconn/core.so", "share/lua/" .. version .. "/mgconn.lua" }, files)
  end)
end)
