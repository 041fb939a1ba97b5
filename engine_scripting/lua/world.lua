-- world.lua: the Lua side of the ECS API for one script's context. Installed once, trusted, by
-- the ScriptManager before the script's own code runs (see sandbox.lua's `install`).
-- Uses: the sandbox kit (original functions, violation reports), and the host functions the
-- ScriptSystem attaches (Python callables, kept in upvalues that scripts cannot reach).
-- Provides: the `world` global and `print`, and trampolines the system calls each tick.
--
-- Every check that needs no world data runs here, in Lua, before anything crosses to Python:
-- argument types, component and field names, value kinds, NaN/inf, payload caps, permissions
-- and scope. A denied operation is reported out of band (the script is disabled even if it
-- catches the error) and raised as a Lua error.
local kit, grants, caps = ...

local type, error, xpcall, next, rawget, rawset, rawlen, tostring, select =
  kit.type, kit.error, kit.xpcall, kit.next, kit.rawget, kit.rawset, kit.rawlen, kit.tostring,
  kit.select
local s_format, s_len, s_sub, t_concat, t_unpack, m_type, utf8_len, huge =
  kit.s_format, kit.s_len, kit.s_sub, kit.t_concat, kit.t_unpack, kit.m_type, kit.utf8_len,
  kit.huge
local violation, current_env, killed, running_deep, traceback, pcall, s_find =
  kit.violation, kit.current_env, kit.killed, kit.running_deep, kit.traceback, kit.pcall,
  kit.s_find

local MAX_TEXT = caps.max_text                -- bytes in one str field or payload string
local MAX_PAYLOAD_ITEMS = caps.max_payload_items
local MAX_PAYLOAD_DEPTH = caps.max_payload_depth
local MAX_PRINT = caps.max_print              -- bytes in one printed line
local MAX_LINES = caps.max_lines              -- printed lines per script per tick

local can_read, can_write, can_emit = {}, {}, {}
for i = 1, rawlen(grants.read) do can_read[grants.read[i]] = true end
for i = 1, rawlen(grants.write) do can_write[grants.write[i]] = true end
for i = 1, rawlen(grants.emit) do can_emit[grants.emit[i]] = true end
local scope_any, can_spawn, can_destroy = grants.scope == "any", grants.spawn, grants.destroy

local components = {}       -- name -> {index, fields = {...}, kinds = {...}, position = {f = i}}
local h_get, h_set, h_has, h_spawn, h_destroy, h_emit, h_print   -- attached by the system

local instances, order = {}, {}   -- entity -> self; entities in ascending order
local current = nil               -- the entity whose callback runs now
local errors = nil                -- errors of the running tick, or nil
local printed, print_tick = 0, -1

------------------------------------------------------------------------------------------------
-- Checks
------------------------------------------------------------------------------------------------
local function deny(message)
  violation("permission", s_format("entity %s: %s", tostring(current), message), 3, current)
end

local function need_world(fname)
  if h_get == nil or current == nil then
    error(s_format("world.%s is only available inside callbacks of an attached script", fname), 3)
  end
end

local function check_entity(fname, entity)
  if m_type(entity) ~= "integer" then
    error(s_format("bad argument #1 to 'world.%s' (entity id expected, got %s)", fname,
      type(entity)), 3)
  end
  if not scope_any and entity ~= current then
    deny(s_format("world.%s on entity %d: this script may only touch its own entity", fname,
      entity))
  end
end

local function check_component(fname, name, granted, what)
  if type(name) ~= "string" then
    error(s_format("bad argument #2 to 'world.%s' (component name expected, got %s)", fname,
      type(name)), 3)
  end
  local component = components[name]
  if component == nil then
    error(s_format("world.%s: unknown component '%s'", fname, s_sub(name, 1, 64)), 3)
  end
  if not granted[name] then
    deny(s_format("world.%s: component '%s' is not %s by this script", fname, name, what))
  end
  return component
end

-- host statuses: 1 done, 0 no such component (or queue full), -1 no such entity, -2 host failure
local function unknown_entity(fname, entity, status)
  if status == -2 then
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

------------------------------------------------------------------------------------------------
-- The world API
------------------------------------------------------------------------------------------------
local world = {}

local function got(entity, fields, status, ...)
  -- status 1: the field values follow; 0: the entity has no such component; -1: no such entity
  if status == 1 then
    local copy = {}
    for i = 1, #fields do copy[fields[i]] = (select(i, ...)) end
    return copy
  end
  if status == 0 then return nil end
  unknown_entity("get", entity, status)
end

function world.get(entity, name)
  need_world("get")
  check_entity("get", entity)
  local component = check_component("get", name, can_read, "readable")
  return got(entity, component.fields, h_get(entity, component.index))
end

function world.set(entity, name, fields)
  need_world("set")
  check_entity("set", entity)
  local component = check_component("set", name, can_write, "writable")
  local values = field_values(component, fields, 3)
  local status = h_set(entity, component.index, t_unpack(values, 1, #component.fields))
  if status ~= 1 then
    if status == 0 then
      error(s_format("world.set: entity %d has no %s component", entity, name), 2)
    end
    unknown_entity("set", entity, status)
  end
end

function world.has(entity, name)
  need_world("has")
  check_entity("has", entity)
  local component = check_component("has", name, can_read, "readable")
  local status = h_has(entity, component.index)
  if status < 0 then unknown_entity("has", entity, status) end
  return status == 1
end

function world.spawn(spec)
  need_world("spawn")
  if not can_spawn then deny("world.spawn is not granted to this script") end
  if type(spec) ~= "table" then
    error("bad argument #1 to 'world.spawn' (table expected, got " .. type(spec) .. ")", 2)
  end
  local script, parts = nil, {}
  for key, fields in next, spec do
    if key == "script" then
      if type(fields) ~= "string" then error("world.spawn: script must be a string name", 2) end
      script = fields
    else
      local component = check_component("spawn", key, can_write, "writable")
      local values = field_values(component, fields, 3)
      for field in next, component.required do
        if values[component.position[field]] == nil then
          error(s_format("world.spawn: %s.%s is required", key, field), 2)
        end
      end
      values.n = #component.fields
      parts[component.index] = values
    end
  end
  local entity, problem = h_spawn(current, parts, script)
  if entity == nil then
    if problem == "permission" then
      deny("world.spawn: script '" .. tostring(script) .. "' has grants this script lacks")
    end
    error("world.spawn: " .. tostring(problem), 2)
  end
  return entity
end

function world.destroy(entity)
  need_world("destroy")
  if not can_destroy then deny("world.destroy is not granted to this script") end
  check_entity("destroy", entity)
  local status = h_destroy(entity)
  if status ~= 1 then unknown_entity("destroy", entity, status) end
end

function world.emit(name, payload, target)
  need_world("emit")
  if type(name) ~= "string" then
    error("bad argument #1 to 'world.emit' (event name expected, got " .. type(name) .. ")", 2)
  end
  if not can_emit[name] then
    deny("world.emit: event '" .. s_sub(name, 1, 64) .. "' is not granted to this script")
  end
  if payload ~= nil and type(payload) ~= "table" then
    error("bad argument #2 to 'world.emit' (table or nil expected, got " .. type(payload) .. ")", 2)
  end
  if target ~= nil and m_type(target) ~= "integer" then
    error("bad argument #3 to 'world.emit' (entity id or nil expected)", 2)
  end
  local copy = payload and copy_payload(payload, 1, {MAX_PAYLOAD_ITEMS}) or {}
  local status = h_emit(current, name, copy, target)
  if status == 0 then error("world.emit: the event queue is full", 2) end
  if status < 0 then unknown_entity("emit", target, status) end
end

local function world_print(...)
  if h_print == nil then return end
  if printed >= MAX_LINES then
    if printed == MAX_LINES then
      printed = printed + 1
      h_print(current, "(more output this tick dropped)", true)
    end
    return
  end
  printed = printed + 1
  local n = select("#", ...)
  local parts = {...}
  for i = 1, n do parts[i] = tostring(parts[i]) end
  local line = t_concat(parts, "\t", 1, n)
  if s_len(line) > MAX_PRINT then line = s_sub(line, 1, MAX_PRINT) .. "..." end
  h_print(current, line, false)
end

kit.add_global("world", world)
kit.add_global("print", world_print)

------------------------------------------------------------------------------------------------
-- Instances and callbacks
------------------------------------------------------------------------------------------------
local function handler(e)
  if killed() then return e end
  local kind = "runtime"
  -- levels above the script: running_deep, handler; below it: xpcall, run, tick, xpcall
  if e == "not enough memory" then kind = "memory"
  elseif running_deep(7) then kind = "recursion" end
  if type(e) ~= "string" then
    local ok, text = pcall(tostring, e)
    e = (ok and type(text) == "string") and text or ("(error object is a " .. type(e) .. " value)")
  end
  if kind == "runtime" and (s_find(e, "stack overflow", 1, true)
      or s_find(e, "recursion limit exceeded", 1, true)) then
    kind = "recursion"
  end
  return {kind = kind, message = traceback(e, 2)}
end

local function run(callback, entity, self, ...)
  local fn = rawget(current_env(), callback)
  if type(fn) ~= "function" then return end
  current = entity
  local ok, err = xpcall(fn, handler, self, ...)
  current = nil
  if not ok then
    if type(err) ~= "table" then
      -- Lua calls no message handler for memory errors
      local kind = err == "not enough memory" and "memory" or "runtime"
      err = {kind = kind, message = tostring(err)}
    end
    err.entity, err.callback = entity, callback
    errors = errors or {}
    errors[#errors + 1] = err
  end
end

local function new_tick(tick_no)
  if tick_no ~= print_tick then printed, print_tick = 0, tick_no end
  errors = nil
end

local function remove_ordered(entity)
  for i = 1, #order do
    if order[i] == entity then
      for j = i, #order - 1 do order[j] = order[j + 1] end
      order[#order] = nil
      return
    end
  end
end

local function insert_ordered(entity)
  local i = #order
  while i >= 1 and order[i] > entity do
    order[i + 1] = order[i]
    i = i - 1
  end
  order[i + 1] = entity
end

-- One tick of this script: end removed instances, start new ones, update every instance.
local function tick(dt, tick_no, added, removed)
  new_tick(tick_no)
  if removed then
    for i = 1, #removed do
      local entity = removed[i]
      local self = instances[entity]
      if self then
        instances[entity] = nil
        remove_ordered(entity)
        run("on_destroy", entity, self)
      end
    end
  end
  if added then
    for i = 1, #added do
      local entity = added[i]
      if instances[entity] == nil then
        local self = {entity = entity}
        instances[entity] = self
        insert_ordered(entity)
        run("on_start", entity, self)
      end
    end
  end
  local on_update = rawget(current_env(), "on_update")
  if type(on_update) == "function" then
    for i = 1, #order do
      local entity = order[i]
      run("on_update", entity, instances[entity], dt)
    end
  end
  return errors
end

-- Deliver queued events: each entry is {target, name, payload}.
local function deliver(tick_no, events)
  new_tick(tick_no)
  for i = 1, #events do
    local event = events[i]
    local target = event[1]
    local self = instances[target]
    if self then run("on_event", target, self, event[2], event[3]) end
  end
  return errors
end

-- Call on_reload(self) on every instance after a new version of the code was adopted.
local function reloaded(tick_no)
  new_tick(tick_no)
  for i = 1, #order do
    local entity = order[i]
    run("on_reload", entity, instances[entity])
  end
  return errors
end

-- The host side: component schemas and the Python functions behind the world API.
local function attach(schema, get, set, has, spawn, destroy, emit, host_print)
  components = {}
  for name, spec in next, schema do
    local position, required = {}, {}
    for i = 1, #spec.fields do position[spec.fields[i]] = i end
    for i = 1, #spec.required do required[spec.required[i]] = true end
    components[name] = {name = name, index = spec.index, fields = spec.fields,
                        kinds = spec.kinds, position = position, required = required}
  end
  h_get, h_set, h_has, h_spawn, h_destroy, h_emit, h_print =
    get, set, has, spawn, destroy, emit, host_print
end

local function last_entity()
  local entity = current
  current = nil
  return entity
end

-- The entities that have a running instance, ascending (for the host to resynchronise).
local function instance_list()
  local copy = {}
  for i = 1, #order do copy[i] = order[i] end
  return copy
end

return {tick = tick, deliver = deliver, reloaded = reloaded, attach = attach,
        last_entity = last_entity, instance_list = instance_list}
