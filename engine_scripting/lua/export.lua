-- export.lua: how results leave the sandbox. Runs once per context, trusted, as
-- `local kit = ...` (type, error, select, next, rawset); returns `results`, which the host's
-- trampolines apply to what a script returned.
-- Provides an unforgeable protocol: the first value is always one the sandbox made: the number
-- of values that follow, when all are scalars (nil, booleans, numbers, strings), or -1 and one
-- plain table {n = count, ...} holding every value as plain data: fresh tables without
-- metatables, no cycles, no functions, threads or userdata (their type names stand in).
local kit = ...
local type, error, select, next, rawset = kit.type, kit.error, kit.select, kit.next, kit.rawset

local MAX_EXPORT_DEPTH = 100
local SCALAR = {["nil"] = true, boolean = true, number = true, string = true}

local function export_value(v, depth, seen)
  local t = type(v)
  if t == "table" then
    if seen[v] then return "<cycle>" end
    if depth >= MAX_EXPORT_DEPTH then error("result nested deeper than 100 tables", 0) end
    seen[v] = true
    local out = {}
    for k, item in next, v do
      local kt = type(k)
      if kt ~= "string" and kt ~= "number" and kt ~= "boolean" then k = "<" .. kt .. ">" end
      rawset(out, k, export_value(item, depth + 1, seen))
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
  for i = 1, n do
    if not SCALAR[type(values[i])] then
      local out = {n = n}
      for j = 1, n do out[j] = export_value(values[j], 0, {}) end
      return -1, out
    end
  end
  return n, ...
end
