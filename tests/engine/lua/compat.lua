-- Ordinary Lua runs unchanged in the sandbox. Each block asserts one area.
-- strings and patterns
assert(("hello world"):upper() == "HELLO WORLD")
assert(string.format("%5.2f|%d|%s|%q", 3.14159, 42, "x", "a\n") == " 3.14|42|x|\"a\\\n\"")
assert(("key = value"):match("^(%w+)%s*=%s*(%w+)$") == "key")
local words = {}
for w in ("the quick brown fox"):gmatch("%a+") do words[#words + 1] = w end
assert(#words == 4 and words[4] == "fox")
assert(("a,b,c"):gsub(",", ";") == "a;b;c")
assert(select(2, ("aaa"):gsub("a", "b")) == 3)
assert(("THE (quick) fox"):find("%((%a+)%)") == 5)
assert(("%bxy"):len() == 4 and ("f(a(b)c)"):match("%b()") == "(a(b)c)")
assert(("hello"):rep(3, "-") == "hello-hello-hello")
assert(("abc"):byte(1, -1) == 97 and string.char(72, 105) == "Hi")
assert(("  trim  "):match("^%s*(.-)%s*$") == "trim")
assert(("x"):rep(0) == "" and ("ab"):reverse() == "ba")
-- tables
local t = {5, 3, 8, 1}
table.sort(t)
assert(table.concat(t, ",") == "1,3,5,8")
table.insert(t, 1, 0); table.insert(t, 9)
assert(table.remove(t) == 9 and table.remove(t, 1) == 0 and #t == 4)
assert(select("#", table.unpack({1, 2, 3})) == 3)
local packed = table.pack(1, nil, 3)
assert(packed.n == 3)
assert(table.concat(table.move({1, 2, 3}, 1, 3, 2, {}), ",", 2, 4) == "1,2,3")
-- metatables and OOP
local Animal = {}
Animal.__index = Animal
function Animal.new(name) return setmetatable({name = name}, Animal) end
function Animal:speak() return self.name .. " makes a sound" end
local Dog = setmetatable({}, {__index = Animal})
Dog.__index = Dog
function Dog.new(name) return setmetatable(Animal.new(name), Dog) end
function Dog:speak() return self.name .. " barks" end
assert(Dog.new("Rex"):speak() == "Rex barks" and Animal.new("Cat"):speak() == "Cat makes a sound")
local V = {}
V.__index = V
V.__add = function(a, b) return setmetatable({x = a.x + b.x}, V) end
V.__eq = function(a, b) return a.x == b.x end
V.__tostring = function(v) return "V(" .. v.x .. ")" end
V.__len = function() return 7 end
V.__call = function(self, k) return self.x * k end
local a, b = setmetatable({x = 1}, V), setmetatable({x = 2}, V)
assert((a + b).x == 3 and a + b == setmetatable({x = 3}, V) and tostring(a) == "V(1)")
assert(#a == 7 and a(10) == 10)
assert(getmetatable(setmetatable({}, {__metatable = "locked"})) == "locked")
-- closures and varargs
local function counter() local n = 0 return function() n = n + 1 return n end end
local c1, c2 = counter(), counter()
c1(); c1()
assert(c1() == 3 and c2() == 1)
local function va(...) return select("#", ...), ... end
assert(va(nil, nil) == 2)
assert(select(-1, 1, 2, 3) == 3)
-- goto
local n = 0
::again:: n = n + 1
if n < 5 then goto again end
assert(n == 5)
-- integers and floats
assert(math.type(1) == "integer" and math.type(1.0) == "float" and 7 // 2 == 3 and 7 / 2 == 3.5)
assert(math.maxinteger + 1 == math.mininteger and 1 << 62 == 4611686018427387904)
assert(3 % -2 == -1 and 2^10 == 1024.0 and math.tointeger(3.0) == 3)
assert(tostring(1e100) == "1e+100" and tonumber("0x10") == 16 and tonumber("z", 36) == 35)
-- utf8
assert(utf8.len("héllo") == 5 and utf8.char(72, 233) == "Hé")
local cps = {}
for _, cp in utf8.codes("añ") do cps[#cps + 1] = cp end
assert(cps[2] == 241)
-- coroutines
local gen = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
assert(gen(1) == 2 and gen(5) == 10)
local co = coroutine.create(function(...) return select("#", ...) end)
assert(select(2, coroutine.resume(co, 1, 2, 3)) == 3 and coroutine.status(co) == "dead")
assert(coroutine.resume(co) == false)
assert(coroutine.isyieldable() == false and coroutine.running() ~= nil)
local inner = coroutine.wrap(function() pcall(function() coroutine.yield(1) end) return 2 end)
assert(inner() == 1 and inner() == 2)
local closed = false
local cc = coroutine.create(function()
  local x <close> = setmetatable({}, {__close = function() closed = true end})
  coroutine.yield()
end)
coroutine.resume(cc)
assert(coroutine.close(cc) == true and closed)
local ok, err = pcall(coroutine.wrap(function() error("boom") end))
assert(not ok and err:find("boom"))
-- pcall and error
local ok1, e1 = pcall(error, {code = 7})
assert(not ok1 and e1.code == 7)
local ok2, e2 = pcall(function() error("msg", 0) end)
assert(e2 == "msg")
local ok3, e3 = xpcall(function() error("x") end, function(m) return "handled: " .. m end)
assert(not ok3 and e3:find("^handled: "))
assert(select("#", pcall(function() return 1, 2 end)) == 3)
-- load
assert(load("return 1 + ...")(2) == 3)
local parts, i = {"return ", "40", " + 2"}, 0
assert(load(function() i = i + 1 return parts[i] end)() == 42)
assert(load("syntax error") == nil)
return "ok"
