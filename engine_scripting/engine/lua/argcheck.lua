-- argcheck.lua: lauxlib's argument checks and error messages, in Lua, for the sandbox's wrappers.
-- Runs once per context, trusted. Uses: debug.getinfo and the original base functions (the kit).
-- Provides: checks that coerce arguments exactly as luaL_checkinteger, luaL_checknumber,
-- luaL_checklstring and their opt forms do, and raise exactly luaL_argerror's messages, so that a
-- wrapped library function fails the way the C function it stands for fails.
--
-- Levels: every check takes `level`, the stack level of the wrapper as seen from the function that
-- calls the check (1 when the wrapper calls it directly). The message names the wrapper the way
-- luaL_argerror names a C function: from the calling instruction ("bad argument #1 to 'find'",
-- "calling 'rep' on bad self"), else by its global name ("string.find"), else "?"; the position
-- prefix is the wrapper's caller's, as luaL_where gives it.
local kit = ...
local type, error, tostring, tonumber, rawget = kit.type, kit.error, kit.tostring,
  kit.tonumber, kit.rawget
local getmetatable = kit.d_getmetatable   -- luaL_getmetafield reads the raw metatable
local getinfo, m_tointeger, s_format = kit.getinfo, kit.tointeger, kit.s_format

local global_names = kit.setmetatable({}, {__mode = "k"})   -- wrapper -> "string.find"

local M = {}

-- Name `fn` for messages raised when it was not called by name (pcall(string.find, ...)).
function M.name(fn, global_name)
  global_names[fn] = global_name
  return fn
end

-- luaL_argerror: the wrapper is at `level` (relative to the caller of argerror).
local function argerror(level, arg, extramsg)
  local at = level + 1   -- getinfo level of the wrapper, seen from here
  local ar = getinfo(at, "nf")
  if ar == nil then error(s_format("bad argument #%d (%s)", arg, extramsg), 0) end
  local name = ar.name
  if ar.namewhat == "method" then
    arg = arg - 1
    if arg == 0 then
      error(s_format("calling '%s' on bad self (%s)", name, extramsg), at + 1)
    end
  end
  if name == nil then name = global_names[ar.func] or "?" end
  error(s_format("bad argument #%d to '%s' (%s)", arg, name, extramsg), at + 1)
end
M.argerror = argerror

local function type_name(value, present)
  if not present then return "no value" end
  local mt = getmetatable(value)
  if type(mt) == "table" then
    local name = rawget(mt, "__name")
    if type(name) == "string" then return name end
  end
  return type(value)
end

-- luaL_typeerror; `present` is false for an absent argument ("got no value").
local function typeerror(level, arg, expected, value, present)
  argerror(level + 1, arg, expected .. " expected, got " .. type_name(value, present))
end
M.typeerror = typeerror

-- luaL_checkinteger: integers, floats with an exact integer value, and strings that convert to
-- such numbers.
local function checkinteger(level, arg, value, present)
  local i = m_tointeger(value)
  if i ~= nil then return i end
  if tonumber(value) ~= nil and (type(value) == "number" or type(value) == "string") then
    argerror(level + 1, arg, "number has no integer representation")
  end
  typeerror(level + 1, arg, "number", value, present)
end
M.checkinteger = checkinteger

-- luaL_optinteger: nil or absent gives `default`.
function M.optinteger(level, arg, value, default)
  if value == nil then return default end
  local i = checkinteger(level + 1, arg, value, true)   -- not a tail call: levels count frames
  return i
end

-- luaL_checknumber: numbers, and strings that convert to numbers.
local function checknumber(level, arg, value, present)
  local n = tonumber(value)
  if n ~= nil and (type(value) == "number" or type(value) == "string") then return n end
  typeerror(level + 1, arg, "number", value, present)
end
M.checknumber = checknumber

-- luaL_checklstring: strings, and numbers converted as lua_tolstring converts them.
local function checkstring(level, arg, value, present)
  local t = type(value)
  if t == "string" then return value end
  if t == "number" then return tostring(value) end
  typeerror(level + 1, arg, "string", value, present)
end
M.checkstring = checkstring

-- luaL_optlstring: nil or absent gives `default`.
function M.optstring(level, arg, value, default)
  if value == nil then return default end
  local text = checkstring(level + 1, arg, value, true)   -- not a tail call (see optinteger)
  return text
end

-- luaL_checktype for tables.
function M.checktable(level, arg, value, present)
  if type(value) ~= "table" then typeerror(level + 1, arg, "table", value, present) end
  return value
end

return M
