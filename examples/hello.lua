-- A small script to try the sandbox: engine-scripting run examples/hello.lua
local Vector = {}
Vector.__index = Vector

function Vector.new(x, y) return setmetatable({x = x, y = y}, Vector) end
function Vector:length() return math.sqrt(self.x * self.x + self.y * self.y) end

local function primes(limit)
  return coroutine.wrap(function()
    for n = 2, limit do
      local prime = true
      for d = 2, math.floor(math.sqrt(n)) do
        if n % d == 0 then prime = false break end
      end
      if prime then coroutine.yield(n) end
    end
  end)
end

local found = {}
for p in primes(50) do found[#found + 1] = p end
print("primes below 50:", table.concat(found, " "))
print("os is", tostring(os), "- the sandbox has no os, io or debug")

return {length = Vector.new(3, 4):length(), primes = #found}
