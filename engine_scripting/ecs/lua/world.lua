-- world.lua: the Lua side of the ECS API for one script's context. Installed once, trusted, by
-- the ScriptManager before the script's own code runs (see sandbox.lua's `install`).
-- Uses: the sandbox kit (original functions, violation reports), and the host functions the
-- ScriptSystem attaches (Python callables, kept in upvalues that scripts cannot reach).
-- Provides: the `world` global and `print`, and trampolines the system calls each tick.
-- `roster` is instances.lua's module: the instance list and the on_start/on_destroy calls owed.
--
-- Every check that needs no world data runs here, in Lua, before anything crosses to Python:
-- argument types, component and field names, value kinds, NaN/inf, payload caps, permissions
-- and scope. A denied operation is reported out of band (the script is disabled even if it
-- catches the error) and raised as a Lua error.
local kit, grants, caps, roster = ...

local type, error, xpcall, next, rawget, rawset, rawlen, tostring, select =
  kit.type, kit.error, kit.xpcall, kit.next, kit.rawget, kit.rawset, kit.rawlen, kit.tostring,
  kit.select
local s_format, s_len, s_sub, t_concat, t_unpack, m_type, utf8_len, huge, tointeger =
  kit.s_format, kit.s_len, kit.s_sub, kit.t_concat, kit.t_unpack, kit.m_type, kit.utf8_len,
  kit.huge, kit.tointeger
local violation, current_env, killed, running_deep, traceback, pcall, s_find, load, t_move =
  kit.violation, kit.current_env, kit.killed, kit.running_deep, kit.traceback, kit.pcall,
  kit.s_find, kit.load, kit.t_move
local setmetatable = kit.setmetatable

local MAX_TEXT = caps.max_text                -- bytes in one str field or payload string
local MAX_PAYLOAD_ITEMS = caps.max_payload_items
local MAX_PAYLOAD_DEPTH = caps.max_payload_depth
local MAX_PRINT = caps.max_print              -- bytes in one printed line
local MAX_LINES = caps.max_lines              -- printed lines per script per tick
-- what the host's functions answer (_batch.py), and the target of a broadcast (_events.py)
local DONE, MISSING, HOST_FAILURE = caps.status.done, caps.status.missing,
  caps.status.host_failure
local EVERY_INSTANCE = caps.status.every_instance

local can_read, can_write, can_emit = {}, {}, {}
for i = 1, rawlen(grants.read) do can_read[grants.read[i]] = true end
for i = 1, rawlen(grants.write) do can_write[grants.write[i]] = true end
for i = 1, rawlen(grants.emit) do can_emit[grants.emit[i]] = true end
local scope_any, can_spawn, can_destroy = grants.scope == "any", grants.spawn, grants.destroy

local components = {}       -- name -> {index, fields = {...}, kinds = {...}, position = {f = i}}
local h_get, h_set, h_has, h_spawn, h_destroy, h_emit, h_print, h_fetch  -- attached

-- roster's state as of this batch (see `adopt`): entity -> self; the entities, ascending;
-- entity -> its place in `order`
local instances, order, slot_of = {}, {}, {}
local adopted = nil
local roster_state, next_owed, receiver = roster.current, roster.next_owed, roster.receiver

-- The batch cache: during one call from the system (a batch), the components of this script's
-- instances are read from the esper world once per component (h_fetch, all instances at once)
-- and writes to them are buffered and written back when the batch ends (pending_writes). Reads see
-- earlier writes of the same batch. Other entities go to the host on every call. The columns
-- stay from batch to batch (the host sends only columns whose values changed, see load_entry).
-- cache[index] = {absent = {[slot] = true}, columns = {{[slot] = value}, ...},
--                 written = {[slot] = generation}, gen = this batch's generation,
--                 fields = n} or false when the host could not provide it.
local cache = {}
local FETCH_CHUNK = 4096          -- instances per h_fetch call or pending_writes chunk
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

-- An entity id: an integer, or a float with an integral value (1.0 is entity 1).
local function check_entity(fname, entity)
  local id = type(entity) == "number" and tointeger(entity) or nil
  if id == nil then
    error(s_format("bad argument #1 to 'world.%s' (entity id expected, got %s)", fname,
      type(entity) == "number" and "non-integral number" or type(entity)), 3)
  end
  if not scope_any and id ~= current then
    deny(s_format("world.%s on entity %d: this script may only touch its own entity", fname,
      id))
  end
  return id
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

------------------------------------------------------------------------------------------------
-- The world API
------------------------------------------------------------------------------------------------
local world = {}

local function got(entity, fields, status, ...)
  -- DONE: the field values follow; MISSING: the entity has no such component
  if status == DONE then
    local copy = {}
    for i = 1, #fields do copy[fields[i]] = (select(i, ...)) end
    return copy
  end
  if status == MISSING then return nil end
  unknown_entity("get", entity, status)
end

-- Copy one chunk from h_fetch into the entry: whether every instance of the chunk has the
-- component, `count` presence flags unless so, then per field 0 (the column already holds
-- these values) or `count` and the values (column-major: cheap to build in Python).
local function take(entry, first, count, status, complete, ...)
  if status ~= DONE then return false end
  local chunk = {...}
  local at, offset = first - 1, 0
  if not complete then
    local absent = entry.absent
    for i = 1, count do
      if not chunk[i] then absent[at + i] = true end
    end
    offset = count
  end
  local columns = entry.columns
  for f = 1, #columns do
    local sent = chunk[offset + 1]
    offset = offset + 1
    if sent > 0 then
      t_move(chunk, offset + 1, offset + sent, first, columns[f])
      offset = offset + sent
    end
  end
  return true
end

-- Load the cache entry of `component` for this batch (false when the host cannot provide it).
-- The column tables and the written marks live as long as the component's schema: a batch
-- grows no new tables, a write is marked with the batch's generation number, and the host
-- sends only the columns whose values changed since it last sent or received them
-- (`synced`: the last load completed, so the host's record of the columns is right).
local function load_entry(component)
  local index, fields, total = component.index, #component.fields, #order
  local columns, fresh = component.columns, not component.synced
  if columns == nil or component.capacity > 4 * total + 64 then
    columns = {}
    for f = 1, fields do columns[f] = {} end
    component.columns, component.written, component.capacity = columns, {}, 0
    fresh = true
  end
  if total > component.capacity then component.capacity = total end
  local gen = component.gen + 1
  component.gen = gen
  local entry = {absent = {}, columns = columns, written = component.written, gen = gen,
                 fields = fields}
  component.synced = false
  local first = 1
  while first <= total do
    local count = total - first + 1
    if count > FETCH_CHUNK then count = FETCH_CHUNK end
    if not take(entry, first, count, h_fetch(index, total, first, count, fresh)) then
      entry = false
      break
    end
    first = first + count
  end
  component.synced = entry ~= false
  cache[index] = entry
  component.entry = entry
  if entry then
    local tables = component.tables
    if tables == nil then
      tables = {}
      component.tables, component.owned = tables, {}
    end
    component.read, component.write = component.bind(entry.absent, entry.written, gen,
      tables, component.owned, t_unpack(columns, 1, fields))
  end
  return entry
end

-- The cache entry of `component` and the slot of `entity`; nil when the entity is no instance
-- of this script or the host cannot provide the values.
local function cached(component, entity)
  local slot = slot_of[entity]
  if slot == nil then return nil end
  local entry = component.entry
  if entry == nil then entry = load_entry(component) end
  if not entry then return nil end
  return entry, slot
end

-- The buffered changes of the last batch, one chunk per call: component index, field count,
-- the count n of changed instances, `first`, then (when `first` is 0) their n slots, and one
-- column of n values per field. A positive `first` stands for the slots first .. first + n - 1
-- (every instance changed). Nothing once all were taken (the cache is then reset). The host
-- pulls them: returning many values to Python is cheap, passing many arguments to a Python
-- function is not.
local flushing = nil   -- {index, entry, changed slots or false (all), next position}

local function reset_cache()
  cache, flushing = {}, nil
  for _, component in next, components do
    component.entry, component.read, component.write = nil, nil, nil
  end
end

-- The slots written in this batch: false when every instance was, else their list (nil when
-- none was).
local function changed_slots(entry)
  local written, gen, total, count = entry.written, entry.gen, #order, 0
  for slot = 1, total do
    if written[slot] == gen then count = count + 1 end
  end
  if count == 0 then return nil end
  if count == total then return false end
  local slots = {}
  for slot = 1, total do
    if written[slot] == gen then slots[#slots + 1] = slot end
  end
  return slots
end

-- Make `flushing` the next cache entry with written slots, dropping the entries it passes;
-- false when there is none left.
local function advance()
  local index, entry = next(cache, nil)
  while index ~= nil do
    local slots = nil
    if entry then slots = changed_slots(entry) end
    cache[index] = nil   -- taken (or nothing to write)
    if slots ~= nil then
      flushing = {index, entry, slots, 1}
      return true
    end
    index, entry = next(cache, nil)
  end
  return false
end

-- The next chunk of the batch's buffered writes, as `more, index, fields, n, first, values...`
-- (see BatchColumns.write_back); `more` says whether another chunk follows. Nothing when there
-- is nothing (left) to write.
local function pending_writes()
  while true do
    if flushing == nil and not advance() then
      reset_cache()
      return
    end
    local index, entry, slots, from = flushing[1], flushing[2], flushing[3], flushing[4]
    local columns, fields = entry.columns, entry.fields
    local total = slots and #slots or #order
    local last = from + FETCH_CHUNK - 1
    if last > total then last = total end
    local n = last - from + 1
    local out, size = {}, 0
    if slots then
      t_move(slots, from, last, 1, out)
      size = n
      for f = 1, fields do
        local column = columns[f]
        for j = 1, n do out[size + j] = column[slots[from + j - 1]] end
        size = size + n
      end
    else
      for f = 1, fields do
        t_move(columns[f], from, last, size + 1, out)
        size = size + n
      end
    end
    if last >= total then flushing = nil else flushing[4] = last + 1 end
    if n > 0 then
      local more = flushing ~= nil or advance()
      if not more then reset_cache() end
      return more, index, fields, n, (slots and 0 or from), t_unpack(out, 1, size)
    end
  end
end

local function checked_get(entity, name)
  need_world("get")
  entity = check_entity("get", entity)
  local component = check_component("get", name, can_read, "readable")
  local entry, slot = cached(component, entity)
  if entry then return component.read(slot) end
  return got(entity, component.fields, h_get(entity, component.index))
end

local function checked_set(entity, name, fields)
  need_world("set")
  entity = check_entity("set", entity)
  local component = check_component("set", name, can_write, "writable")
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
  entity = check_entity("has", entity)
  local component = check_component("has", name, can_read, "readable")
  local entry, slot = cached(component, entity)
  if entry then return not entry.absent[slot] end
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
  if component ~= nil and current ~= nil and (entity == current or scope_any) then
    local slot = slot_of[entity]
    if slot ~= nil then
      -- loaded on the first use in a batch; nil or false when the host could not provide it
      local read = component.read or component.entry == nil and load_entry(component)
        and component.read
      if read then return read(slot) end
    end
  end
  return checked_get(entity, name)
end

function world.has(entity, name)
  local component = readable[name]
  if component ~= nil and current ~= nil and (entity == current or scope_any) then
    local entry, slot = cached(component, entity)
    if entry then return not entry.absent[slot] end
  end
  return checked_has(entity, name)
end

function world.set(entity, name, fields)
  local component = writable[name]
  if component ~= nil and current ~= nil and (entity == current or scope_any) then
    local slot = slot_of[entity]
    if slot ~= nil then
      local write = component.write or component.entry == nil and load_entry(component)
        and component.write
      -- write() stores only when every given field is valid; anything else (and text fields)
      -- takes the checked path, which raises the precise error
      if write and write(fields, slot) then return end
    end
  end
  return checked_set(entity, name, fields)
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
    error("world.spawn: " .. (problem or "failed in the host (the failure is logged)"), 2)
  end
  return entity
end

function world.destroy(entity)
  need_world("destroy")
  if not can_destroy then deny("world.destroy is not granted to this script") end
  entity = check_entity("destroy", entity)
  local status = h_destroy(entity)
  if status ~= DONE then unknown_entity("destroy", entity, status) end
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
  if target ~= nil and not scope_any and target ~= current then
    deny(s_format("world.emit to entity %d: this script may only touch its own entity", target))
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

kit.add_global("world", world)
kit.add_global("print", world_print)

------------------------------------------------------------------------------------------------
-- Instances and callbacks
------------------------------------------------------------------------------------------------
local function handler(e)
  if killed() then return e end
  -- memory errors never reach a message handler (see `record`); levels above the script:
  -- running_deep, handler; below it: xpcall, run, tick, xpcall
  local kind = running_deep(7) and "recursion" or "runtime"
  if type(e) ~= "string" then
    local ok, text = pcall(tostring, e)
    e = (ok and type(text) == "string") and text or ("(error object is a " .. type(e) .. " value)")
  end
  return {kind = kind, message = traceback(e, 2)}
end

local function record(err, entity, callback)
  if type(err) ~= "table" then
    -- Lua calls no message handler for memory errors
    local kind = err == "not enough memory" and "memory" or "runtime"
    err = {kind = kind, message = tostring(err)}
  end
  err.entity, err.callback = entity, callback
  errors = errors or {}
  errors[#errors + 1] = err
end

local function run(callback, entity, self, ...)
  local fn = rawget(current_env(), callback)
  if type(fn) ~= "function" then return end
  current = entity
  local ok, err = xpcall(fn, handler, self, ...)
  current = nil
  if not ok then record(err, entity, callback) end
end

local function new_tick(tick_no)
  if tick_no ~= print_tick then printed, print_tick = 0, tick_no end
  errors = nil
end

local function update_from(first, dt, on_update)
  for i = first, #order do
    local entity = order[i]
    current = entity
    on_update(instances[entity], dt)
  end
end

-- Take roster's current state for this batch (it changes only in `sync`, between batches).
-- Component tables are per slot: with a new numbering they go (a table a script kept is no
-- longer refreshed). `adopted` is set last, so a stop half-way adopts again next batch.
local function adopt()
  local state = roster_state()
  if state == adopted then return end
  instances, order, slot_of = state.instances, state.order, state.slot_of
  for _, component in next, components do component.tables, component.owned = nil, nil end
  adopted = state
end

-- A receiver's own copy of a payload (already plain and capped when it was emitted).
local function fresh(value)
  if type(value) ~= "table" then return value end
  local copy = {}
  for k, v in next, value do rawset(copy, k, fresh(v)) end
  return copy
end

-- One tick of this script, in one batch: deliver the events queued during the previous tick
-- (`events`: {{name, payload}, ...}, each converted once; `targets`: {entity, event number,
-- ...}; every receiver gets its own payload copy), run the on_destroy and on_start calls owed
-- (see instances.lua: the host synced the instance list before this call), update every
-- instance. Instances that end still get the events sent to them; instances whose on_start has
-- not run get none (they did not exist when the events were sent).
local function tick(dt, tick_no, events, targets)
  new_tick(tick_no)
  reset_cache()
  adopt()
  if targets and type(rawget(current_env(), "on_event")) == "function" then
    for i = 1, #targets, 2 do
      local target, event = targets[i], events[targets[i + 1]]
      if target == EVERY_INSTANCE then   -- a broadcast: every instance there is now
        for j = 1, #order do
          local entity = order[j]
          local self = receiver(entity)
          if self then run("on_event", entity, self, event[1], fresh(event[2])) end
        end
      else
        local self = receiver(target)
        if self then run("on_event", target, self, event[1], fresh(event[2])) end
      end
    end
  end
  local callback, entity, self = next_owed()
  while callback do
    run(callback, entity, self)
    callback, entity, self = next_owed()
  end
  local on_update = rawget(current_env(), "on_update")
  if type(on_update) == "function" then
    -- one protected call for the whole run of instances; after an error, go on with the next
    local first = 1
    while first <= #order do
      local ok, err = xpcall(update_from, handler, first, dt, on_update)
      if ok then break end
      local failed = current
      record(err, failed, "on_update")
      first = (slot_of[failed] or #order) + 1
    end
    current = nil
  end
  -- the first chunk of writes goes back with the results: taken inside the watched call, as
  -- nothing may allocate in this state between calls (a collector step there is unwatched)
  return errors, pending_writes()
end

-- Call on_reload(self) on every instance after a new version of the code was adopted (not on
-- those whose on_start is still owed: they have not run the old code).
local function reloaded(tick_no)
  new_tick(tick_no)
  reset_cache()
  adopt()
  local unstarted = adopted.unstarted
  for i = 1, #order do
    local entity = order[i]
    local self = instances[entity]
    if unstarted[entity] ~= self then run("on_reload", entity, self) end
  end
  return errors, pending_writes()
end

-- bind(absent, written, gen, tables, owned, column 1, ..., column n) -> read, write: the fast
-- accessors of one component for one batch, generated per component (field names are quoted
-- with %q).
--   read(slot): the instance's component table, its fields refreshed from the columns; nil when
--     the instance has no such component. One table per instance and component (`tables`,
--     slot -> table; `owned`, the set of them), kept until the instance list changes, so a get
--     builds no table. Its metatable refuses keys that are not fields and cannot be replaced or
--     read, so such a table only ever holds field keys (rawset aside, see write).
--   write(fields, slot): store a script's field table when the instance has the component,
--     every key is one of its fields and every value has the field's kind, and mark the slot
--     written in batch `gen`; false (nothing stored) otherwise, and for text fields, which the
--     checked path validates. A foreign table is read raw (next), each value once; a component
--     table of this component (any instance's) is read by field name, raw too (the metatable
--     has no __index), and keys a script forced into it with rawset are ignored.
local WRITE_CHECKS = {
  -- x - x is 0 for every finite x, NaN for NaN and the infinities
  float = "if type(v%d) == 'number' then v%d = v%d + 0.0 if v%d - v%d ~= 0.0 then return false end "
    .. "elseif v%d ~= nil then return false end",
  int = "if v%d ~= nil and m_type(v%d) ~= 'integer' then return false end",
  bool = "if v%d ~= nil and type(v%d) ~= 'boolean' then return false end",
  str = "if v%d ~= nil then return false end",
}
local MAX_BOUND_FIELDS = 60   -- Lua allows 200 locals and 255 upvalues per function

-- The metatable of a component's tables: assigning a key that is no field raises the error
-- world.set would raise; a field removed with nil may be assigned again.
local function component_metatable(name, position)
  return {
    __metatable = "component table",
    __newindex = function(t, key, value)
      if not position[key] then   -- field names only: no other key is in `position`
        error(s_format("%s has no field '%s'", name, s_sub(tostring(key), 1, 64)), 2)
      end
      rawset(t, key, value)
    end,
  }
end

local function make_binder(name, fields, kinds, position)
  local n = #fields
  if n == 0 or n > MAX_BOUND_FIELDS then
    return function(absent, written, gen, tables, owned, ...)
      local columns = {...}
      local function read(slot)
        if absent[slot] then return nil end
        local copy = {}
        for f = 1, n do copy[fields[f]] = columns[f][slot] end
        return copy
      end
      return read, function() return false end
    end
  end
  local columns, values, slot_values, pairs_, keys, tests, checks, stores =
    {}, {}, {}, {}, {}, {}, {}, {}
  for i = 1, n do
    columns[i] = "c" .. i
    values[i] = "v" .. i
    slot_values[i] = s_format("c%d[s]", i)
    pairs_[i] = s_format("[%q] = c%d[s]", fields[i], i)
    keys[i] = s_format("t[%q]", fields[i])
    tests[i] = s_format("%s k == %q then v%d = v", i == 1 and "if" or "elseif", fields[i], i)
    checks[i] = s_format(WRITE_CHECKS[kinds[i]], i, i, i, i, i, i)
    stores[i] = s_format("if v%d ~= nil then c%d[s] = v%d end", i, i, i)
  end
  local source = "local next, type, m_type, setmetatable, mt = ... "
    .. "return function(absent, written, gen, tables, owned, " .. t_concat(columns, ", ") .. ") "
    .. "local function read(s) if absent[s] then return nil end "
    .. "local t = tables[s] "
    .. "if t == nil then t = setmetatable({" .. t_concat(pairs_, ", ") .. "}, mt) "
    .. "tables[s], owned[t] = t, true return t end "
    .. t_concat(keys, ", ") .. " = " .. t_concat(slot_values, ", ") .. " "
    .. "return t end "
    .. "local function write(t, s) if absent[s] then return false end "
    .. "local " .. t_concat(values, ", ") .. " "
    .. "if owned[t] then " .. t_concat(values, ", ") .. " = " .. t_concat(keys, ", ")
    .. " elseif type(t) ~= 'table' then return false else "
    .. "for k, v in next, t do " .. t_concat(tests, " ") .. " else return false end end end "
    .. t_concat(checks, " ") .. " " .. t_concat(stores, " ") .. " "
    .. "written[s] = gen return true end "
    .. "return read, write end"
  return load(source, "=bind", "t", {})(next, type, m_type, setmetatable,
    component_metatable(name, position))
end

-- The host side: component schemas and the Python functions behind the world API.
local function attach(schema, get, set, has, spawn, destroy, emit, host_print, fetch)
  components = {}
  for name, spec in next, schema do
    local position, required = {}, {}
    for i = 1, #spec.fields do position[spec.fields[i]] = i end
    for i = 1, #spec.required do required[spec.required[i]] = true end
    local component = {name = name, index = spec.index, fields = spec.fields,
                       kinds = spec.kinds, position = position, required = required,
                       bind = make_binder(name, spec.fields, spec.kinds, position), gen = 0,
                       capacity = 0,
                       synced = false}
    components[name] = component
  end
  readable, writable = {}, {}
  for name, component in next, components do
    if can_read[name] then readable[name] = component end
    if can_write[name] then writable[name] = component end
  end
  h_get, h_set, h_has, h_spawn, h_destroy, h_emit, h_print, h_fetch =
    get, set, has, spawn, destroy, emit, host_print, fetch
  reset_cache()
end

local function last_entity()
  local entity = current
  current = nil
  return entity
end

return {tick = tick, reloaded = reloaded, attach = attach, last_entity = last_entity,
        pending_writes = pending_writes}
