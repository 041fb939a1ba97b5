-- world.lua: the Lua side of the ECS API for one script's context. Installed once, trusted, by
-- WorldApi (the manager's context initializer) before the script's own code runs (see sandbox.lua's `install`), after the
-- chunks it builds on (see _world_api.py).
-- Uses: the sandbox kit (original functions, violation reports), and the host functions the
-- ScriptSystem attaches (Python callables, kept in upvalues that scripts cannot reach).
-- Provides: the `world` global and `print`, and trampolines the system calls each tick.
-- `roster` is instances.lua's module: the instance list and the on_start/on_destroy calls owed;
-- `checks`, checks.lua's: the checks that need only the caps; `batch`, batch.lua's: the batch
-- cache and the generated accessors. What is used of them is bound into locals once, here;
-- batch.lua is handed the state it shares with this chunk when it changes (`attach`, `adopt`);
-- `query`, query.lua's: world.query/within/nearest and the query store, which extends batch.lua's
-- reset, write-back, attach and adopt (bound here in their place).
--
-- Every check that needs no world data runs in Lua, before anything crosses to Python:
-- argument types, component and field names, value kinds, NaN/inf, payload caps, permissions
-- and scope. A denied operation is reported out of band (the script is disabled even if it
-- catches the error) and raised as a Lua error.
local kit, grants, caps, roster, checks, batch, query, saves, tasks = ...   -- saves.lua, tasks.lua

local type, error, xpcall, next, rawget, tostring, select =
  kit.type, kit.error, kit.xpcall, kit.next, kit.rawget, kit.tostring, kit.select
local s_format, s_len, s_sub, t_concat, t_unpack, m_type, tointeger =
  kit.s_format, kit.s_len, kit.s_sub, kit.t_concat, kit.t_unpack, kit.m_type, kit.tointeger
local violation, current_env, export = kit.violation, kit.current_env, kit.export
local unknown_entity, field_values, copy_payload, spawn_scripts, fresh, unknown_component =
  checks.unknown_entity, checks.field_values, checks.copy_payload, checks.spawn_scripts,
  checks.fresh, checks.unknown_component
local call_text, error_record = checks.call_text, checks.error_record
local load_entry, cached, reset_cache, pending_writes, components_of, batch_attach, batch_adopt =
  batch.load_entry, batch.cached, batch.reset_cache, batch.pending_writes, batch.components_of,
  batch.attach, batch.adopt
reset_cache, pending_writes, batch_attach, batch_adopt =
  query.reset_cache, query.pending_writes, query.attach, query.adopt
local q_find, q_store, q_values = query.find, query.store, query.values
local foreign_read, foreign_keep, foreign_drop =
  batch.foreign_read, batch.foreign_keep, batch.foreign_drop
local task_live, run_tasks, end_tasks = tasks.live, tasks.run, tasks.end_entity

local MAX_PAYLOAD_ITEMS = caps.max_payload_items
local MAX_PRINT = caps.max_print              -- bytes in one printed line
local MAX_LINES = caps.max_lines              -- printed lines per script per tick
-- what the host's functions answer (_batch.py), and the target of a broadcast (_events.py)
local DONE, MISSING = caps.status.done, caps.status.missing
local EVERY_INSTANCE = caps.status.every_instance

-- The grants as lookup sets (checks.lua's grant_sets)
local can_read, can_write, field_grant, can_emit, can_template = checks.grant_sets(grants)
local read_any, write_any = grants.read_scope == "any", grants.write_scope == "any"
local can_spawn, can_destroy = grants.spawn, grants.destroy

local components = {}       -- name -> {index, fields = {...}, kinds = {...}, position = {f = i}}
local h_get, h_set, h_has, h_spawn, h_destroy, h_emit, h_print  -- attached (fetch: batch.lua)

-- roster's state as of this batch (see `adopt`): entity -> self; the entities, ascending;
-- entity -> its place in `order`
local instances, order, slot_of = {}, {}, {}
local adopted = nil
local roster_state, next_owed, receiver = roster.current, roster.next_owed, roster.receiver

local current, running = nil, nil   -- the entity whose callback runs now, and its name
local errors = nil                -- errors of the running tick, or nil
local printed, print_tick = 0, -1

------------------------------------------------------------------------------------------------
-- Checks of the calling context (the rest: checks.lua)
------------------------------------------------------------------------------------------------
-- `operation` denied for `why`, lacking `grant`; the kit's violation puts the position first
local function deny(operation, why, grant)
  violation("permission", s_format("%s(entity %s): %s denied: %s; missing grant: %s", running and
    "in " .. running .. " " or "", tostring(current), operation, why, grant), 2, current, running)
end

local function need_world(fname)
  if h_get == nil or current == nil then
    error(s_format("world.%s is only available inside callbacks of an attached script", fname), 3)
  end
end

-- An entity id: an integer, or a float with an integral value (1.0 is entity 1), within the
-- scope of the operation: `any` is read_any or write_any, `verb` "read" or "write".
local function check_entity(fname, entity, any, verb, name)
  local id = type(entity) == "number" and tointeger(entity) or nil
  if id == nil then
    error(s_format("bad argument #1 to 'world.%s' (entity id expected, got %s)", fname,
      type(entity) == "number" and "non-integral number" or type(entity)), 3)
  end
  if not any and id ~= current then
    deny(call_text(fname, id, name), "this script may only " .. verb .. " its own entity",
      verb .. '_scope="any"')
  end
  return id
end

local function check_component(fname, name, granted, what, entity)
  if type(name) ~= "string" then
    error(s_format("bad argument #2 to 'world.%s' (component name expected, got %s)", fname,
      type(name)), 3)
  end
  local component = components[name]
  if component == nil then unknown_component(fname, name, components, 3) end
  if not granted[name] then
    deny(call_text(fname, entity, name), s_format("component '%s' is not %s by this script",
      name, what), s_format('%s={"%s"}', what == "readable" and "read" or "write", name))
  end
  return component
end

------------------------------------------------------------------------------------------------
-- The world API
------------------------------------------------------------------------------------------------
local world = {}

local function got(component, entity, status, ...)
  -- DONE: the field values follow (kept for later reads in this batch); MISSING: the entity
  -- has no such component
  if status == DONE then return foreign_keep(component, entity, {...}) end
  if status == MISSING then return nil end
  unknown_entity("get", entity, status)
end

local function packed(status, ...) if status == DONE then return {...} end end

-- The current field values of a component (by position) that the script may read on
-- `entity`; nil when it may not, or when there are none.
local function readable_values(component, entity)
  if not can_read[component.name] or not (read_any or entity == current) then return nil end
  local entry, slot = cached(component, entity)
  if entry then
    if entry.absent[slot] then return nil end
    local now, columns = {}, entry.columns
    for i = 1, #component.fields do now[i] = columns[i][slot] end
    return now
  end
  return q_values(component, entity) or packed(h_get(entity, component.index))
end

-- A field outside the script's field grant (field_grant) may be given only with its current
-- value, and only where the script may read it, so that a component table from world.get can
-- be passed back whole; anything else is denied. `entity` is nil for a new entity (spawn):
-- there, any such field is denied.
local function check_fields(fname, component, entity, fields)
  if type(fields) ~= "table" then return end   -- field_values raises the error
  local granted, position, now = field_grant[component.name], component.position, false
  for field, value in next, fields do
    local at = type(field) == "string" and position[field]
    if at and not granted[field] then
      if now == false then now = entity ~= nil and readable_values(component, entity) end
      if not now or now[at] ~= value then
        deny(call_text(fname, entity, component.name), s_format("field '%s' of %s is not "
          .. "writable by this script", field, component.name),
          s_format('write={"%s": {"%s"}}', component.name, field))
      end
    end
  end
end

local function checked_get(entity, name)
  need_world("get")
  entity = check_entity("get", entity, read_any, "read", name)
  local component = check_component("get", name, can_read, "readable", entity)
  local entry, slot = cached(component, entity)
  if entry then return component.read(slot) end
  local read, row = q_find(component, entity)   -- query.lua's store
  if read then return read(row) end
  return got(component, entity, h_get(entity, component.index))
end

local function checked_set(entity, name, fields)
  need_world("set")
  entity = check_entity("set", entity, write_any, "write", name)
  local component = check_component("set", name, can_write, "writable", entity)
  if field_grant[name] then check_fields("set", component, entity, fields) end
  local values = field_values(component, fields, 3)
  local entry, slot = cached(component, entity)
  if entry then
    if entry.absent[slot] then
      error(s_format("world.set: entity %d has no %s component", entity, name), 2)
    end
    local columns = entry.columns
    for i = 1, #component.fields do
      local value = values[i]
      if value ~= nil then columns[i][slot] = value end
    end
    entry.written[slot] = entry.gen
    return
  end
  if q_store(component, entity, values) then return end
  foreign_drop()   -- the host's setter is the game's code: it may change other entities
  local status = h_set(entity, component.index, t_unpack(values, 1, #component.fields))
  if status ~= DONE then
    if status == MISSING then
      error(s_format("world.set: entity %d has no %s component", entity, name), 2)
    end
    unknown_entity("set", entity, status)
  end
end

local function checked_has(entity, name)
  need_world("has")
  entity = check_entity("has", entity, read_any, "read", name)
  local component = check_component("has", name, can_read, "readable", entity)
  local entry, slot = cached(component, entity)
  if entry then return not entry.absent[slot] end
  if q_find(component, entity) then return true end
  local status = h_has(entity, component.index)
  if status ~= DONE and status ~= MISSING then unknown_entity("has", entity, status) end
  return status == DONE
end

-- Fast paths: the common case (a granted, known component of one of this script's instances,
-- within scope) needs no call to the host. Anything else takes the checked path above, which
-- raises the precise error.
local readable, writable = {}, {}   -- name -> component, for known and granted components

-- slot_of has integer keys only (1.0 finds entity 1, as check_entity allows); anything else
-- misses and takes the checked path.
function world.get(entity, name)
  local component = readable[name]
  if component ~= nil and current ~= nil and (entity == current or read_any) then
    local slot = slot_of[entity]
    if slot ~= nil then
      -- loaded on the first use in a batch; nil or false when the host could not provide it
      local read = component.read or component.entry == nil and load_entry(component)
        and component.read
      if read then return read(slot) end
    else   -- another entity: query.lua's store, while a query has it loaded; or read before
      local read, row = component.qread, component.qrow[entity]
      if read and row then return read(row) end
      local copy = foreign_read(component, entity)
      if copy then return copy end
    end
  end
  return checked_get(entity, name)
end

function world.has(entity, name)
  local component = readable[name]
  if component ~= nil and current ~= nil and (entity == current or read_any) then
    local entry, slot = cached(component, entity)
    if entry then return not entry.absent[slot] end
  end
  return checked_has(entity, name)
end

function world.set(entity, name, fields)
  local component = writable[name]
  if component ~= nil and current ~= nil and (entity == current or write_any) then
    local slot = slot_of[entity]
    if slot ~= nil then
      local write = component.write or component.entry == nil and load_entry(component)
        and component.write
      -- write() stores only when every given field is valid and granted (batch.lua's
      -- make_binder); anything else (and text fields) takes the checked path, which raises the
      -- precise error
      if write and write(fields, slot) then return end
    else   -- another entity: query.lua's store buffers the write as the batch cache does
      local write, row = component.qwrite, component.qrow[entity]
      if write and row and write(fields, row) then return end
    end
  end
  return checked_set(entity, name, fields)
end

-- world.spawn({Position = {...}, script = "name"}) needs `spawn` (and, with a script, grants
-- that cover the script's: the host checks); world.spawn("template", {Position = {...}}) needs
-- the template in `templates` (the host knows the templates: it answers "permission" when
-- `granted` is false), and its overrides set fields of the template's components. Both need
-- `write` for every field they give.
function world.spawn(spec, overrides)
  need_world("spawn")
  local template = nil
  if type(spec) == "string" then
    if overrides ~= nil and type(overrides) ~= "table" then
      error("bad argument #2 to 'world.spawn' (table of overrides or nil expected, got "
        .. type(overrides) .. ")", 2)
    end
    template, spec = spec, overrides or {}
  elseif not can_spawn then
    deny("world.spawn({...})", "world.spawn is not granted to this script", "spawn=True")
  elseif type(spec) ~= "table" then
    error("bad argument #1 to 'world.spawn' (table or template name expected, got "
      .. type(spec) .. ")", 2)
  elseif overrides ~= nil then
    error("bad argument #2 to 'world.spawn' (nothing expected after a table of components)", 2)
  end
  local script, parts = nil, {}
  for key, fields in next, spec do
    if key == "script" and template == nil then
      script = spawn_scripts(fields)   -- a name or an array of names
    else
      local component = check_component("spawn", key, can_write, "writable")
      if field_grant[key] then check_fields("spawn", component, nil, fields) end
      local values = field_values(component, fields, 3)
      if template == nil then
        for field in next, component.required do
          if values[component.position[field]] == nil then
            error(s_format("world.spawn: %s.%s is required", key, field), 2)
          end
        end
      end
      values.n = #component.fields
      parts[component.index] = values
    end
  end
  local entity, problem, grant, named = h_spawn(current, parts, script, template,
    template ~= nil and can_template[template] == true)
  query.spawned() foreign_drop()   -- later reads ask the host (templates run host code)
  if entity == nil then
    if problem == "permission" then   -- the host names the script and the grant it lacks
      if template ~= nil then
        template = s_sub(template, 1, 64)
        deny(s_format('world.spawn("%s")', template), s_format("template '%s' is not granted "
          .. "to this script", template), s_format('templates={"%s"}', template))
      end
      deny(s_format('world.spawn({script = "%s"})', tostring(named)), s_format("script '%s' "
        .. "has grants this script lacks", tostring(named)), tostring(grant))
    end
    error("world.spawn: " .. (problem or "failed in the host (the failure is logged)"), 2)
  end
  return entity
end

function world.destroy(entity)
  need_world("destroy")
  if not can_destroy then
    deny("world.destroy", "world.destroy is not granted to this script", "destroy=True")
  end
  entity = check_entity("destroy", entity, write_any, "write")
  foreign_drop()
  local status = h_destroy(entity)
  if status ~= DONE then unknown_entity("destroy", entity, status) end
  query.destroyed(entity)   -- running queries skip it from now on
end

function world.emit(name, payload, target)
  need_world("emit")
  if type(name) ~= "string" then
    error("bad argument #1 to 'world.emit' (event name expected, got " .. type(name) .. ")", 2)
  end
  if not can_emit[name] then
    name = s_sub(name, 1, 64)
    deny(s_format('world.emit("%s")', name), s_format("event '%s' is not granted to this script",
      name), s_format('emit={"%s"}', name))
  end
  if payload ~= nil and type(payload) ~= "table" then
    error("bad argument #2 to 'world.emit' (table or nil expected, got " .. type(payload) .. ")", 2)
  end
  if target ~= nil and m_type(target) ~= "integer" then
    error("bad argument #3 to 'world.emit' (entity id or nil expected)", 2)
  end
  if target ~= nil and target ~= current and can_emit[name] ~= "any" then
    deny(s_format('world.emit("%s", ..., %d)', name, target), "this script may only send it to "
      .. "its own entity", s_format('emit={"%s": "any"}', name))
  end
  local copy = payload and copy_payload(payload, 1, {MAX_PAYLOAD_ITEMS}) or {}
  local status = h_emit(current, name, copy, target)
  if status == MISSING then error("world.emit: the event queue is full", 2) end
  if status ~= DONE then unknown_entity("emit", target, status) end
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

-- world.query/within/nearest: query.lua, which needs the running entity, deny, get, has and
-- checks.lua's unknown_component
query.bind(function() return current end, deny, need_world, world.get, world.has, unknown_component)
world.query, world.within, world.nearest = query.query, query.within, query.nearest
kit.add_global("world", world)
kit.add_global("print", world_print)

------------------------------------------------------------------------------------------------
-- Instances and callbacks
------------------------------------------------------------------------------------------------
-- levels above the script: running_deep, handler; below it: xpcall, run, tick, xpcall
local handler = checks.error_handler(7)

local function record(err, entity, callback)
  err = error_record(err)
  err.entity, err.callback = entity, callback
  errors = errors or {}
  errors[#errors + 1] = err
end

local function run(callback, entity, self, ...)
  local fn = rawget(current_env(), callback)
  if type(fn) ~= "function" then return end
  current, running = entity, callback
  local ok, err = xpcall(fn, handler, self, ...)
  current, running = nil, nil
  if not ok then record(err, entity, callback) end
end

-- tasks.lua runs task steps as their entity and records their errors as callbacks' ("task")
tasks.bind(record, function(entity, callback)
  local outer, outer_callback = current, running
  current, running = entity, callback
  return outer, outer_callback
end, function() return current, print_tick end)

-- `on_event` of every started instance from `first` on (receiver's rule), each with its own
-- copy of the payload: one protected call for the whole run, as update_from below
local function deliver_from(first, env, name, payload, sender, unstarted)
  running = "on_event"
  for j = first, #order do
    local entity = order[j]
    local self = instances[entity]
    if unstarted[entity] ~= self then
      local fn = rawget(env, "on_event")   -- read per call, as `run` does: a handler may change it
      if type(fn) ~= "function" then return end
      current = entity
      fn(self, name, fresh(payload), sender)
    end
  end
end

-- `from(first, ...)` (deliver_from, update_from: a run of instances from `first` on) under one
-- protected call; after an error, go on with the next instance. `callback` names the failures.
local deeper = checks.error_handler(8)   -- below the script: from, xpcall, each_from, tick, xpcall
local function each_from(from, callback, ...)
  local first = 1
  while first <= #order do
    local ok, err = xpcall(from, deeper, first, ...)
    if ok then break end
    local failed = current
    record(err, failed, callback)
    first = (slot_of[failed] or #order) + 1
  end
  current, running = nil, nil
end

local function new_tick(tick_no)
  if tick_no ~= print_tick then printed, print_tick = 0, tick_no end
  errors = nil
end

local function update_from(first, dt, on_update)
  running = "on_update"
  for i = first, #order do
    local entity = order[i]
    current = entity
    on_update(instances[entity], dt)
  end
end

-- Take roster's current state for this batch (it changes only in `sync`, between batches), and
-- hand batch.lua the new numbering (component tables are per slot: they go, see its `adopt`).
-- `adopted` is set last, so a stop half-way adopts again next batch.
local function adopt()
  local state = roster_state()
  if state == adopted then return end
  instances, order, slot_of = state.instances, state.order, state.slot_of
  batch_adopt(order, slot_of)
  adopted = state
end

-- One tick of this script, in one batch: deliver the events queued during the previous tick
-- (`events`: {{name, payload, sender}, ...}, each converted once, the sender nil for the
-- host's; `targets`: {entity, event number,
-- ...}; every receiver gets its own payload copy), run the on_destroy and on_start calls owed
-- (see instances.lua: the host synced the instance list before this call), update every
-- instance. Instances that end still get the events sent to them; instances whose on_start has
-- not run get none (they did not exist when the events were sent).
local function tick(dt, tick_no, events, targets)
  new_tick(tick_no)
  reset_cache()
  adopt()
  local env = current_env()   -- only a reload (a host call between batches) replaces it
  if targets and type(rawget(env, "on_event")) == "function" then
    for i = 1, #targets, 2 do
      local target, event = targets[i], events[targets[i + 1]]
      if target == EVERY_INSTANCE then   -- a broadcast: every instance there is now
        each_from(deliver_from, "on_event", env, event[1], event[2], event[3], adopted.unstarted)
      else
        local self = receiver(target)
        if self then run("on_event", target, self, event[1], fresh(event[2]), event[3]) end
      end
    end
  end
  if task_live[1] ~= 0 then   -- the tasks of ended instances end before their on_destroy
    for entity, self in next, adopted.ending do end_tasks(entity, self) end
  end
  local callback, entity, self = next_owed()
  while callback do
    run(callback, entity, self)
    callback, entity, self = next_owed()
  end
  if saves.due then saves.deliver(run, record) end   -- load_state's data: on_load or merge
  if task_live[1] ~= 0 then run_tasks(dt, tick_no) end   -- tasks.lua: the tasks due
  local on_update = rawget(env, "on_update")
  if type(on_update) == "function" then each_from(update_from, "on_update", dt, on_update) end
  -- idle: nothing to do until the host brings something new (ScriptSystem._run_script skips
  -- the script meanwhile): no on_update to run, no task alive, no loaded data to deliver
  local idle = (#order == 0 or type(rawget(env, "on_update")) ~= "function")
    and task_live[1] == 0 and not saves.due
  -- the first chunk of writes goes back with the results: taken inside the watched call, as
  -- nothing may allocate in this state between calls (a collector step there is unwatched)
  return errors, idle, pending_writes()
end

-- Call on_reload(self) on every instance after a new version of the code was adopted (not on
-- those whose on_start is still owed: they have not run the old code).
local function reloaded(tick_no)
  new_tick(tick_no)
  reset_cache()
  adopt()
  if task_live[1] ~= 0 then tasks.reloaded() end   -- the old code's tasks end
  local unstarted = adopted.unstarted
  for i = 1, #order do
    local entity = order[i]
    local self = instances[entity]
    if unstarted[entity] ~= self then run("on_reload", entity, self) end
  end
  return errors, false, pending_writes()
end

-- system.call: the global `fname(self, ...)` (`n` values in `args`) for the instance on `entity`,
-- in a batch of its own. Returns false and what is missing ("instance": none whose on_start
-- ran; "function"), or true, the errors and the first chunk of writes; the results wait for
-- `call_results`, which exports them (the host converts them as for ScriptContext.call).
local called = nil
local function keep(entity, fname, ok, ...)
  current, running = nil, nil
  if ok then called = {n = select("#", ...), ...} else record((...), entity, fname) end
end

local function run_call(fn, entity, self, fname, n, args)   -- as deep as `run` (see handler)
  current, running = entity, fname
  keep(entity, fname, xpcall(fn, handler, self, t_unpack(args, 1, n)))
end

local function call(entity, fname, n, args)
  printed, print_tick, errors, called = 0, -1, nil, nil
  reset_cache()
  adopt()
  local self = instances[entity]
  if self == nil or adopted.unstarted[entity] == self then return false, "instance" end
  local fn = rawget(current_env(), fname)
  if type(fn) ~= "function" then return false, "function" end
  run_call(fn, entity, self, fname, n, args)
  return true, errors, pending_writes()
end

local function call_results()
  local values = called or {n = 0}
  called = nil
  return export(t_unpack(values, 1, values.n))
end

-- The host side: component schemas and the Python functions behind the world API.
local function attach(schema, get, set, has, spawn, destroy, emit, host_print, fetch, ...)
  components = components_of(schema, field_grant)
  readable, writable = {}, {}
  for name, component in next, components do
    if can_read[name] then readable[name] = component end
    if can_write[name] then writable[name] = component end
  end
  h_get, h_set, h_has, h_spawn, h_destroy, h_emit, h_print =
    get, set, has, spawn, destroy, emit, host_print
  batch_attach(components, fetch, ...)   -- and query.lua's host functions
  reset_cache()
end

local function last_entity()
  local entity, callback = current, running
  current, running = nil, nil
  return entity, callback
end

return {tick = tick, reloaded = reloaded, attach = attach, last_entity = last_entity,
        pending_writes = pending_writes, call = call, call_results = call_results}
