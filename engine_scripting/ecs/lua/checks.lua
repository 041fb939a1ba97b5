-- checks.lua: the checks of the ECS API that depend on nothing but the caps: value kinds,
-- NaN/inf, text and payload caps, and the host statuses turned into errors. Installed once,
-- trusted, by WorldApi (the manager's context initializer; see _world_api.py), before batch.lua
-- and world.lua; world.lua binds what it uses into locals once, at install time.
-- Uses: the sandbox kit (original functions) and the caps (_world_api.py's WORLD_CAPS).
-- Provides: `unknown_entity`, `field_value`, `field_values`, `copy_payload`, `spawn_scripts`,
-- `unknown_component` (the error that lists the known components), `grant_sets`, `fresh`,
-- `error_handler` and `error_record` (error records of script code run under xpcall).
--
-- The checks that need the calling context (the entity whose callback runs, the attached host,
-- the known components: `deny`, `need_world`, `check_entity`, `check_component`) live in
-- world.lua beside that state. Every error level below counts from the function that raises
-- it, so the world API's call chain decides what a script's error points at, as before.
local kit, caps = ...

local type, error, next, rawset, tostring, rawget, rawlen =
  kit.type, kit.error, kit.next, kit.rawset, kit.tostring, kit.rawget, kit.rawlen
local s_format, s_len, s_sub, m_type, utf8_len, huge, t_concat =
  kit.s_format, kit.s_len, kit.s_sub, kit.m_type, kit.utf8_len, kit.huge, kit.t_concat

local MAX_TEXT = caps.max_text                -- bytes in one str field or payload string
local MAX_PAYLOAD_ITEMS = caps.max_payload_items
local MAX_PAYLOAD_DEPTH = caps.max_payload_depth
-- what the host's functions answer (_batch.py)
local HOST_FAILURE = caps.status.host_failure

-- host statuses: DONE, MISSING (no such component, or queue full), UNKNOWN_ENTITY, HOST_FAILURE
local function unknown_entity(fname, entity, status)
  if status == HOST_FAILURE then
    error(s_format("world.%s failed in the host (the failure is logged)", fname), 3)
  end
  error(s_format("world.%s: unknown entity %d", fname, entity), 3)
end

-- A value for one field, converted to its kind, or an error naming what is wrong.
local function field_value(cname, field, kind, value, level)
  if kind == "float" then
    if type(value) ~= "number" then
      error(s_format("%s.%s must be a number, not %s", cname, field, type(value)), level)
    end
    if value ~= value or value == huge or value == -huge then
      error(s_format("%s.%s must be a finite number", cname, field), level)
    end
    return value + 0.0
  elseif kind == "int" then
    if m_type(value) ~= "integer" then
      error(s_format("%s.%s must be an integer, not %s", cname, field,
        m_type(value) or type(value)), level)
    end
    return value
  elseif kind == "bool" then
    if type(value) ~= "boolean" then
      error(s_format("%s.%s must be a boolean, not %s", cname, field, type(value)), level)
    end
    return value
  end
  if type(value) ~= "string" then
    error(s_format("%s.%s must be a string, not %s", cname, field, type(value)), level)
  end
  if s_len(value) > MAX_TEXT then
    error(s_format("%s.%s is longer than %d bytes", cname, field, MAX_TEXT), level)
  end
  if utf8_len(value) == nil then
    error(s_format("%s.%s is not valid UTF-8", cname, field), level)
  end
  return value
end

-- Validated field values of a component, by field position (nil: not given). Reads the
-- script's table raw, so metamethods cannot show the check one value and the write another.
local function field_values(component, fields, level)
  if type(fields) ~= "table" then
    error(s_format("fields of %s must be a table, not %s", component.name, type(fields)), level)
  end
  local values, position, kinds = {}, component.position, component.kinds
  for field, value in next, fields do
    local at = type(field) == "string" and position[field]
    if not at then
      error(s_format("%s has no field '%s'", component.name, s_sub(tostring(field), 1, 64)),
        level)
    end
    values[at] = field_value(component.name, field, kinds[at], value, level + 1)
  end
  return values
end

-- A plain-data copy of an event payload: tables, strings, numbers, booleans; capped in size.
local function copy_payload(value, depth, budget)
  local kind = type(value)
  if kind == "string" then
    if s_len(value) > MAX_TEXT then error("event payload string longer than " .. MAX_TEXT, 0) end
    return value
  elseif kind == "number" then
    if value ~= value then error("event payload holds NaN", 0) end
    return value
  elseif kind == "boolean" then
    return value
  elseif kind ~= "table" then
    error("event payload cannot hold a " .. kind, 0)
  end
  if depth > MAX_PAYLOAD_DEPTH then
    error("event payload nested deeper than " .. MAX_PAYLOAD_DEPTH .. " tables", 0)
  end
  local copy = {}
  for k, v in next, value do
    budget[1] = budget[1] - 1
    if budget[1] < 0 then error("event payload has more than " .. MAX_PAYLOAD_ITEMS .. " items", 0) end
    local key_kind = type(k)
    if key_kind ~= "string" and m_type(k) ~= "integer" then
      error("event payload keys must be strings or integers", 0)
    end
    if key_kind == "string" and s_len(k) > MAX_TEXT then error("event payload key too long", 0) end
    rawset(copy, k, copy_payload(v, depth + 1, budget))
  end
  return copy
end

-- world.spawn's `script`: one name, or an array of 1 to MAX_SPAWN_SCRIPTS names, each once (the
-- entity runs each: Script(*names)); a name, or a fresh array of names.
local MAX_SPAWN_SCRIPTS = 16
local function spawn_scripts(value)
  if type(value) == "string" then return value end
  local n = type(value) == "table" and rawlen(value) or 0
  if n < 1 or n > MAX_SPAWN_SCRIPTS then
    error(s_format("world.spawn: script must be a name or an array of 1 to %d names",
      MAX_SPAWN_SCRIPTS), 3)
  end
  local names, seen = {}, {}
  for i = 1, n do
    local name = rawget(value, i)
    if type(name) ~= "string" then error("world.spawn: script names must be strings", 3) end
    if seen[name] then error("world.spawn: script '" .. s_sub(name, 1, 64) .. "' named twice", 3) end
    seen[name], names[i] = true, name
  end
  return names
end

-- The grants (see lua_grants in _world_api.py) as lookup sets: can_read, component -> true;
-- can_write, component -> true; field_grant, component -> {field = true} when only those fields
-- may be written (none: every field); can_emit, event -> the scope of its targets ("self" or
-- "any"); can_template, template -> true.
local function grant_sets(grants)
  local can_read, can_write, field_grant, can_emit, can_template = {}, {}, {}, {}, {}
  for i = 1, rawlen(grants.read) do can_read[grants.read[i]] = true end
  for name, fields in next, grants.write do
    can_write[name] = true
    if fields ~= true then
      field_grant[name] = {}
      for i = 1, rawlen(fields) do field_grant[name][fields[i]] = true end
    end
  end
  for name, target_scope in next, grants.emit do can_emit[name] = target_scope end
  for i = 1, rawlen(grants.templates) do can_template[grants.templates[i]] = true end
  return can_read, can_write, field_grant, can_emit, can_template
end

-- A message handler for script code run under xpcall: the error record world.lua's `record`
-- takes ({kind, message}), with the traceback at the error. `levels`: how far the script's own
-- first frame is below the handler's caller (running_deep's argument): the handler and
-- running_deep above the script, and the calls below it down to the host's entry.
local killed, running_deep, traceback, pcall = kit.killed, kit.running_deep, kit.traceback,
  kit.pcall
local function error_handler(levels)
  return function(e)
    if killed() then return e end
    local kind = running_deep(levels) and "recursion" or "runtime"
    if type(e) ~= "string" then
      local ok, text = pcall(tostring, e)
      e = (ok and type(text) == "string") and text
        or ("(error object is a " .. type(e) .. " value)")
    end
    return {kind = kind, message = traceback(e, 2)}
  end
end

-- What a failed xpcall gave as an error record: Lua calls no message handler for memory
-- errors, which arrive as the bare message.
local function error_record(err)
  if type(err) == "table" then return err end
  return {kind = err == "not enough memory" and "memory" or "runtime", message = tostring(err)}
end

-- A receiver's own copy of a payload (already plain and capped when it was emitted).
local function fresh(value)
  if type(value) ~= "table" then return value end
  local copy = {}
  for k, v in next, value do rawset(copy, k, fresh(v)) end
  return copy
end

-- The error for a component name the ScriptSystem was not given: it lists the known ones
-- (`components`: name -> record with its `index`, batch.lua's components_of), the first
-- MAX_LISTED in the system's order, and says where scripts' components come from.
local MAX_LISTED = 20
local function unknown_component(fname, name, components, level)
  local known, count = {}, 0
  for known_name, component in next, components do
    count = count + 1
    if component.index <= MAX_LISTED then known[component.index] = known_name end
  end
  local listed = count == 0 and "none" or t_concat(known, ", ", 1, count < MAX_LISTED and count
    or MAX_LISTED) .. (count > MAX_LISTED and s_format(" and %d more", count - MAX_LISTED) or "")
  error(s_format("world.%s: unknown component '%s' (known: %s); a component scripts use must "
    .. "be given to ScriptSystem(components=[...])", fname, s_sub(name, 1, 64), listed),
    level + 1)
end

-- A call as a denial names it: world.get(2, "Position"), world.destroy(2), world.spawn.
local function call_text(fname, entity, name)
  return s_format(entity == nil and "world.%s" or type(name) == "string" and 'world.%s(%d, "%s")'
    or "world.%s(%d)", fname, entity, type(name) == "string" and s_sub(name, 1, 64) or nil)
end

return {unknown_entity = unknown_entity, field_value = field_value, call_text = call_text,
        field_values = field_values, copy_payload = copy_payload, spawn_scripts = spawn_scripts,
        grant_sets = grant_sets, fresh = fresh, unknown_component = unknown_component,
        error_handler = error_handler, error_record = error_record}
