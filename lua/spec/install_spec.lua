-- The README's install command, run as written (into a tree of the spec's own), installs the
-- module and only the module.
local root = os.getenv("MGCONN_SOURCE_DIR") or "."

describe("install (luarocks make)", function()
  it("runs the README's command as written and installs only mgconn.lua and mgconn/core.so", function()
    local command
    for line in io.lines(root .. "/README.md") do
      command = command or line:match("^### Lua 5%.4 %(`(luarocks [^`]+)`%)")
    end
    assert.truthy(command, "the README names no luarocks command")
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
    assert.are.same({ "lib/lua/5.4/mgconn/core.so", "share/lua/5.4/mgconn.lua" }, files)
  end)
end)
