-- batch.lua: the batch cache of one script's context, the Lua side of _batch.py's BatchColumns.
-- Installed once per script, trusted, by WorldApi (the manager's context initializer; see
-- _world_api.py), before world.lua, which binds what it uses into locals once, at install time.
-- Uses: the sandbox kit (original functions), the host statuses in `caps`, and what world.lua
-- hands over when it changes: the component schemas and the host's fetch function (`attach`),
-- the instance numbering of the batch (`adopt`).
-- Provides: `attach`, `adopt`, `reset_cache`, `load_entry`, `cached`, `pending_writes` (the host
-- pulls it through world.lua's trampolines) and `make_binder` (a component's fast accessors).
--
-- During one call from the system (a batch), the components of this script's instances are
-- read from the esper world once per component (h_fetch, all instances at once) and writes to
-- them are buffered and written back when the batch ends (pending_writes). Reads see earlier
-- writes of the same batch. Other entities go to the host on every call. The columns stay from
-- batch to batch (the host sends only columns whose values changed, see load_entry).
-- cache[index] = {absent = {[slot] = true}, columns = {{[slot] = value}, ...},
--                 written = {[slot] = generation}, gen = this batch's generation,
--                 fields = n} or false when the host could not provide it.
local kit, caps = ...

local next, t_concat, t_unpack, t_move, s_format, load, type, m_type, setmetatable, error,
  rawset, s_sub, tostring =
  kit.next, kit.t_concat, kit.t_unpack, kit.t_move, kit.s_format, kit.load, kit.type,
  kit.m_type, kit.setmetatable, kit.error, kit.rawset, kit.s_sub, kit.tostring

local DONE = caps.status.done   -- what the host's functions answer (_batch.py)

local components = {}   -- world.lua's, as of its last `attach`
local h_fetch           -- attached
-- world.lua's instance numbering as of this batch (see its `adopt`): the entities, ascending;
-- entity -> its place in `order`
local order, slot_of = {}, {}

local cache = {}
local loaded = false              -- an entry was loaded since the cache was last reset
-- Other entities' components read in this batch: foreign[index][entity] = the field values
-- (at most FOREIGN_MAX entities a batch). Only this script runs during its batch; it changes
-- other entities only through world.set, world.destroy and world.spawn, whose host side may run
-- the game's own code (setters, constructors, templates): each drops everything kept.
-- Held weakly at both levels: a collection may drop them (the next read asks the host again),
-- so what is kept never takes memory a script needs (a few hundred bytes aside).
local WEAK_VALUES = {__mode = "v"}
local function no_reads() return setmetatable({}, WEAK_VALUES), 0 end
local foreign, foreign_count = no_reads()
local FOREIGN_MAX = 4096
local FETCH_CHUNK = 4096          -- instances per h_fetch call or pending_writes chunk

-- Copy the per-field part of a fetched chunk into `columns` from slot `first` on: per field 0
-- (the column already holds these values) or a count and the values. `offset`: where it
-- starts in `chunk`.
local function fill_columns(chunk, offset, first, columns)
  for f = 1, #columns do
    local sent = chunk[offset + 1]
    offset = offset + 1
    if sent > 0 then
      t_move(chunk, offset + 1, offset + sent, first, columns[f])
      offset = offset + sent
    end
  end
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
  fill_columns(chunk, offset, first, entry.columns)
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
  cache[index], loaded = entry, true
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
  if not loaded then return end   -- a batch that read no component allocates nothing here
  cache, flushing = {}, nil
  if foreign_count > 0 then foreign, foreign_count = no_reads() end
  for _, component in next, components do
    component.entry, component.read, component.write = nil, nil, nil
  end
  loaded = false   -- last: a reset stopped half-way (a time limit) is done again next batch
end

-- A new table of `component`'s fields from `values` (by field position).
local function as_fields(component, values)
  local fields, copy = component.fields, {}
  for i = 1, #fields do copy[fields[i]] = values[i] end
  return copy
end

-- A copy of `component` of another entity as read earlier in this batch, or nil.
local function foreign_read(component, entity)
  local kept = foreign[component.index]
  local values = kept and kept[entity]
  return values and as_fields(component, values)
end

-- Another entity's `component`, just read from the host (`values` by field position): kept for
-- later reads in this batch, and a copy for the caller.
local function foreign_keep(component, entity, values)
  if foreign_count < FOREIGN_MAX then
    local index = component.index
    local kept = foreign[index]
    if kept == nil then kept = setmetatable({}, WEAK_VALUES) foreign[index] = kept end
    kept[entity], foreign_count, loaded = values, foreign_count + 1, true
  end
  return as_fields(component, values)
end

-- Forget everything kept: the script is about to change the world.
local function foreign_drop()
  if foreign_count > 0 then foreign, foreign_count = no_reads() end
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

-- Rows from .. from + chunk - 1 (at most `total`) of `fields` columns, flattened for the host:
-- the slots first when `slots` picks the rows, then each column's values. Returns the values,
-- their count, the number of rows and the last row. Shared with query.lua's store.
local function pack_rows(columns, fields, slots, from, total, chunk)
  local last = from + chunk - 1
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
  return out, size, n, last
end

-- The next chunk of the batch's buffered writes, as `more, index, fields, n, first, values...`
-- (see BatchColumns.write_back); `more` says whether another chunk follows. Nothing when there
-- is nothing (left) to write.
local function pending_writes()
  if not loaded then return end
  while true do
    if flushing == nil and not advance() then
      reset_cache()
      return
    end
    local index, entry, slots, from = flushing[1], flushing[2], flushing[3], flushing[4]
    local fields, total = entry.fields, slots and #slots or #order
    local out, size, n, last = pack_rows(entry.columns, fields, slots, from, total, FETCH_CHUNK)
    if last >= total then flushing = nil else flushing[4] = last + 1 end
    if n > 0 then
      local more = flushing ~= nil or advance()
      if not more then reset_cache() end
      return more, index, fields, n, (slots and 0 or from), t_unpack(out, 1, size)
    end
  end
end

-- world.lua's component schemas (name -> component, see its `attach`) and the host's fetch
-- function, from now on. The caller resets the cache.
local function attach(schema_components, fetch)
  components, h_fetch = schema_components, fetch
end

-- world.lua's new instance numbering for this batch (see its `adopt`). Component tables are per
-- slot: with a new numbering they go (a table a script kept is no longer refreshed).
local function adopt(new_order, new_slot_of)
  order, slot_of = new_order, new_slot_of
  for _, component in next, components do component.tables, component.owned = nil, nil end
end

------------------------------------------------------------------------------------------------
-- The generated accessors
------------------------------------------------------------------------------------------------
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
--     has no __index), and keys a script forced into it with rawset are ignored. With a field
--     grant (`granted`: {field = true}), a field outside it is never stored: write returns
--     false when one is given, unless the table is the slot's own component table and the
--     value is the current one (world.lua's checked path decides every other case).
local WRITE_CHECKS = {
  -- x - x is 0 for every finite x, NaN for NaN and the infinities
  float = "if type(v%d) == 'number' then v%d = v%d + 0.0 if v%d - v%d ~= 0.0 then return false end "
    .. "elseif v%d ~= nil then return false end",
  int = "if v%d ~= nil and m_type(v%d) ~= 'integer' then return false end",
  bool = "if v%d ~= nil and type(v%d) ~= 'boolean' then return false end",
  str = "if v%d ~= nil then return false end",
  -- a field outside the field grant
  denied = "if v%d ~= nil and (v%d ~= c%d[s] or tables[s] ~= t) then return false end",
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

local function make_binder(name, fields, kinds, position, granted)
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
    if granted == nil or granted[fields[i]] then
      checks[i] = s_format(WRITE_CHECKS[kinds[i]], i, i, i, i, i, i)
      stores[i] = s_format("if v%d ~= nil then c%d[s] = v%d end", i, i, i)
    else
      checks[i], stores[i] = s_format(WRITE_CHECKS.denied, i, i, i), ""
    end
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

-- The world's components as world.lua keeps them: name -> {name, index, fields, kinds,
-- position (field -> its place), required (field -> true), bind (make_binder's), and the batch
-- cache's bookkeeping}; `schema` is the host's (_schema.py), `field_grant` checks.lua's.
local function components_of(schema, field_grant)
  local components = {}
  for name, spec in next, schema do
    local position, required = {}, {}
    for i = 1, #spec.fields do position[spec.fields[i]] = i end
    for i = 1, #spec.required do required[spec.required[i]] = true end
    components[name] = {name = name, index = spec.index, fields = spec.fields,
                        kinds = spec.kinds, position = position, required = required,
                        bind = make_binder(name, spec.fields, spec.kinds, position,
                                           field_grant[name]),
                        gen = 0, capacity = 0, synced = false}
  end
  return components
end

return {attach = attach, adopt = adopt, reset_cache = reset_cache, load_entry = load_entry,
        pack_rows = pack_rows,
        cached = cached, pending_writes = pending_writes, make_binder = make_binder,
        components_of = components_of, fill_columns = fill_columns,
        foreign_read = foreign_read, foreign_keep = foreign_keep, foreign_drop = foreign_drop}
