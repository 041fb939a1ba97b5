-- export.lua: how results leave the sandbox. Runs once per context, trusted, as
-- `local kit = ...` (type, error, select, next, rawset); returns `results`, which the host's
-- trampolines apply to what a script returned.
-- Provides an unforgeable protocol: the first value is always one the sandbox made: the number
-- of values that follow, when they are at most MAX_DIRECT scalars (nil, booleans, numbers,
-- strings shorter than LONG), or -1, one plain table {n = count, ...} holding every value as
-- plain data (fresh tables without metatables, no cycles, no functions, threads or userdata:
-- their type names stand in),
-- and the list of the long strings it holds, each once. A long string's place holds a table
-- {[REF] = its index in that list}: no other exported table has a table key (the host converts
-- each long string once, however often the result holds it).
local kit = ...
local type, error, select, next, rawset = kit.type, kit.error, kit.select, kit.next, kit.rawset

local MAX_EXPORT_DEPTH = 100
local LONG = 256
local MAX_DIRECT = 64
local SCALAR = {["nil"] = true, boolean = true, number = true, string = true}
local REF = {}

local function shared(s, strings)
  local index = strings[s]
  if index == nil then
    index = strings.count + 1
    strings.count, strings[s], strings.list[index] = index, index, s
  end
  return {[REF] = index}
end

local function export_value(v, depth, seen, strings)
  local t = type(v)
  if t == "string" then
    if #v >= LONG then return shared(v, strings) end
    return v
  elseif t == "table" then
    if seen[v] then return "<cycle>" end
    if depth >= MAX_EXPORT_DEPTH then error("result nested deeper than 100 tables", 0) end
    seen[v] = true
    local out = {}
    for k, item in next, v do
      local kt = type(k)
      if kt ~= "string" and kt ~= "number" and kt ~= "boolean" then k = "<" .. kt .. ">" end
      rawset(out, k, export_value(item, depth + 1, seen, strings))
    end
    seen[v] = nil
    return out
  elseif t == "function" or t == "thread" or t == "userdata" then
    return "<" .. t .. ">"
  end
  return v
end

return function(...)
  local n = select("#", ...)
  local values = {...}
  local direct = n <= MAX_DIRECT   -- lupa converts values handed back directly all at once
  for i = 1, direct and n or 0 do
    local v = values[i]
    local t = type(v)
    if not SCALAR[t] or (t == "string" and #v >= LONG) then
      direct = false
      break
    end
  end
  if direct then return n, ... end
  local out, strings = {n = n}, {count = 0, list = {}}
  for j = 1, n do out[j] = export_value(values[j], 0, {}, strings) end
  return -1, out, strings.list
end
