"""Compute-heavy Lua workloads: sandboxed contexts against a plain lupa.lua54.LuaRuntime."""

from __future__ import annotations

from types import MappingProxyType

WORKLOADS = MappingProxyType({
    "recursion": """
        local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
        return fib(24)""",
    "numeric_loop": """
        local s = 0.0
        for i = 1, 2000000 do s = s + (i % 7) * 0.5 - (i // 3) end
        return s""",
    "table_string_building": """
        local parts = {}
        for i = 1, 40000 do parts[#parts + 1] = tostring(i) .. ":" .. (i * 2) end
        local joined = table.concat(parts, ",")
        local count = 0
        for _ in joined:gmatch("%d+:") do count = count + 1 end
        local t = {}
        for i = 1, 40000 do t["k" .. (i % 1000)] = (t["k" .. (i % 1000)] or 0) + i end
        return count""",
    "oop_metatables": """
        local Point = {}
        Point.__index = Point
        function Point.new(x, y) return setmetatable({x = x, y = y}, Point) end
        function Point:add(o) return Point.new(self.x + o.x, self.y + o.y) end
        function Point:len2() return self.x * self.x + self.y * self.y end
        local acc = Point.new(0, 0)
        for i = 1, 150000 do acc = acc:add(Point.new(i % 3, i % 5)) end
        return acc:len2()""",
    "coroutine_generators": """
        local function range(n)
          return coroutine.wrap(function() for i = 1, n do coroutine.yield(i) end end)
        end
        local function filter(pred, gen)
          return coroutine.wrap(function()
            for v in gen do if pred(v) then coroutine.yield(v) end end
          end)
        end
        local total = 0
        for v in filter(function(x) return x % 3 == 0 end, range(60000)) do
          total = total + v * v % 11
        end
        return total""",
    "string_library": """
        local items = {}
        for i = 1, 2000 do items[i] = string.format("item%04d=%d;", i, i * 7) end
        local long = table.concat(items)
        local total = 0
        for i = 1, 3000 do
          local s = string.format("%s-%05d:%.2f", "key", i, i / 7)
          local at = s:find("-", 1, true)
          local k, v = s:match("^(%a+)-(%d+)")
          local u = s:upper():sub(2, 6)
          local r = s:gsub("%d", "#")
          total = total + at + #k + #v + #u + #r + #s:rep(3, ",")
        end
        for k, v in long:gmatch("(%w+)=(%d+);") do total = total + #k + v % 3 end
        local replaced, n = long:gsub("item(%d+)", "<%1>")
        total = total + n + #replaced
        for i = 1, 50 do
          local at = long:find("item" .. (i * 37 % 1000 + 1000) .. "=", 1, true)
          local m = long:match("item0*" .. i .. "=(%d+)")
          total = total + (at or 0) % 7 + #(m or "")
        end
        return total""",
    "coroutine_yield": """
        local gen = coroutine.wrap(function()
          local i = 0
          while true do i = i + 1 coroutine.yield(i) end
        end)
        local total = 0
        for _ = 1, 150000 do total = total + gen() end
        local function worker(n) for i = 1, n do coroutine.yield(i) end return 0 end
        for _ = 1, 2000 do
          local co = coroutine.create(worker)
          while true do
            local _, v = coroutine.resume(co, 20)
            if coroutine.status(co) == "dead" then break end
            total = total + v
          end
        end
        return total""",
})
