-- query.lua: world.query, world.within and world.nearest of one script's context, and the query
-- store. Installed once, trusted, by WorldApi (_world_api.py) after batch.lua and before
-- world.lua, which binds what it uses once, at install time, and publishes the three functions.
-- Uses: the sandbox kit, the grants, the caps, batch.lua (its reset, write-back pull, attach
-- and adopt, which this chunk extends), and what world.lua hands over: its callback context and
-- world.get/has (`bind`), the schemas and host functions (`attach`), the numbering (`adopt`).
-- Provides: query, within, nearest; reset_cache, pending_writes, attach, adopt (extended);
-- bind; find, store, values (world.lua's checked paths); destroyed, spawned (world.destroy/spawn).
--
-- A query yields the entities that have all the listed components (and the `with` ones, and
-- none of the `without` ones), ascending, with the tables world.get would give: an instance of
-- this script gets its batch-cache table (through world.get), any other ("foreign") entity a
-- table of the query store. The store keeps, per component, rows of columns like the batch
-- cache's, numbered by the host (_query.py's docstring has the load modes); it is loaded once
-- per batch and component and kept from batch to batch while the host's list is the same, so
-- only changed values cross. While loaded, every read and write of its foreign entities goes
-- there (world.get/has/set check it; world.set buffers, and later queries see the write), and
-- its writes go back with the batch cache's when the batch ends.
--
-- A store lives in fields of world.lua's component record: qrow (entity -> row), qents (row ->
-- entity), qn (rows), qcols (a column per field), qwritten (row -> the gen that wrote it), qgen,
-- qtables/qowned (tables per row, batch.lua's binder), qcapacity, qsynced (the host's record of
-- it is right), qbatch (the batch it was loaded in), qstuck (a load failed half-way in that
-- batch), and qread/qwrite: its accessors while loaded, else nil (world.lua's fast paths).
local kit, grants, caps, batch = ...

local type, error, select, next, rawget, rawlen, tostring =
  kit.type, kit.error, kit.select, kit.next, kit.rawget, kit.rawlen, kit.tostring
local s_format, s_sub, t_move, t_concat, t_unpack, m_type, huge =
  kit.s_format, kit.s_sub, kit.t_move, kit.t_concat, kit.t_unpack, kit.m_type, kit.huge
local batch_reset, batch_pending, batch_attach, batch_adopt, pack_rows =
  batch.reset_cache, batch.pending_writes, batch.attach, batch.adopt, batch.pack_rows

local DONE, HOST_FAILURE = caps.status.done, caps.status.host_failure
local MAX_NAMES = caps.max_query_components     -- names in one query, filters included
local MAX_RESULTS = caps.max_spatial_results    -- entities one world.within returns
-- the host's chunk kinds and load modes (_query.py)
local q = caps.query
local VALUES, LIST = q.values, q.list
local RESET, REUSE, APPEND, LOADED = q.reset, q.reuse, q.append, q.loaded
local CHUNK = q.chunk                           -- rows per write-back chunk
local MAX_KEPT = q.max_kept                     -- query lists kept (the host keeps as many)

local can_read = {}
for i = 1, rawlen(grants.read) do can_read[grants.read[i]] = true end
local read_any = grants.read_scope == "any"   -- world.get/has's scope (lua_grants)

local components, by_index = {}, {}   -- world.lua's records by name, and by index (attach)
local h_start, h_pull, h_spatial, h_within, h_nearest
local spatial = false          -- the spatial component's record, nil without an index; false: ask
local slot_of = {}             -- world.lua's instance numbering (adopt)
local current, deny, need_world, w_get, w_has, unknown   -- world.lua's (bind)
local batch_no = 0             -- bumped at every reset and when a batch's writes are all out
local gone = {}                -- entities world.destroy marked in this batch
local lists, kept = {}, 0      -- query key -> {version, list}: the host's lists, as sent
-- Within a batch only this script changes which entities a query finds (world.spawn and
-- world.destroy bump `epoch`): a query loaded in the batch since then is answered from `memo`
-- (key -> {epoch, list, n, direct}) without asking the host.
local epoch, memo = 0, {}
local loaded = {}              -- components whose store is loaded in this batch, in load order
local EMPTY = {}               -- `absent` of the store's accessors: a row has its component
------------------------------------------------------------------------------------------------
-- Batch boundaries and write-back (batch.lua's, extended)
------------------------------------------------------------------------------------------------
local flushing, next_loaded = nil, 1   -- {component, written rows or false (all), next position}

local function unload()   -- allocates only what the batch used (it runs for every batch)
  if loaded[1] ~= nil then
    for i = 1, #loaded do loaded[i].qread, loaded[i].qwrite = nil, nil end
    loaded = {}
  end
  if next(gone) ~= nil then gone = {} end
  if next(memo) ~= nil then memo = {} end
  flushing, next_loaded, batch_no = nil, 1, batch_no + 1
end

local function reset_cache()
  batch_reset()
  unload()
end

-- The rows of a store written in this batch: false when all were, else their list (nil: none).
local function written_rows(component)
  local written, gen, total, count = component.qwritten, component.qgen, component.qn, 0
  for row = 1, total do if written[row] == gen then count = count + 1 end end
  if count == 0 or count == total then return count == 0 and nil end
  local rows = {}
  for row = 1, total do if written[row] == gen then rows[#rows + 1] = row end end
  return rows
end

local function advance()
  while next_loaded <= #loaded do
    local component = loaded[next_loaded]
    next_loaded = next_loaded + 1
    local rows = written_rows(component)
    if rows ~= nil then flushing = {component, rows, 1} return true end
  end
  return false
end

-- The next chunk of the store's writes, in batch.lua's format with the component index negated
-- (the host routes it to QueryHost.write_back); nothing once all are out.
local function store_pending()
  if flushing == nil and not advance() then
    unload()
    return
  end
  local component, rows, from = flushing[1], flushing[2], flushing[3]
  local fields, total = #component.fields, rows and #rows or component.qn
  local out, size, n, last = pack_rows(component.qcols, fields, rows, from, total, CHUNK)
  if last >= total then flushing = nil else flushing[3] = last + 1 end
  local more = flushing ~= nil or advance()
  if not more then unload() end
  return more, -component.index, fields, n, (rows and 0 or from), t_unpack(out, 1, size)
end

-- batch.lua's chunks first; its last one says more follow while a store was loaded.
local function chain(more, ...)
  if more == nil then return store_pending() end
  if not more and loaded[1] ~= nil then more = true end
  return more, ...
end

local function pending_writes()
  if loaded[1] == nil then return batch_pending() end   -- no store: batch.lua's, untouched
  return chain(batch_pending())
end

------------------------------------------------------------------------------------------------
-- The store, for world.lua's checked paths
------------------------------------------------------------------------------------------------
-- The read accessor and row of `entity` in the loaded store of `component`, or nil.
local function find(component, entity)
  local read = component.qread
  local row = read and component.qrow[entity]
  if row then return read, row end
end

-- world.set's checked path: store validated values (by field position); false when the entity
-- is not in the loaded store.
local function store(component, entity, values)
  local read, row = find(component, entity)
  if not read then return false end
  for f = 1, #component.fields do
    if values[f] ~= nil then component.qcols[f][row] = values[f] end
  end
  component.qwritten[row] = component.qgen
  return true
end

-- The current field values (by position) of `entity` in the loaded store, or nil.
local function values(component, entity)
  local read, row = find(component, entity)
  if not read then return nil end
  local now = {}
  for f = 1, #component.fields do now[f] = component.qcols[f][row] end
  return now
end

------------------------------------------------------------------------------------------------
-- Arguments
------------------------------------------------------------------------------------------------
local function too_many(fname, count, level)
  if count > MAX_NAMES then
    error(s_format("world.%s: at most %d component names", fname, MAX_NAMES), level + 1)
  end
end

-- A component record for the name at argument `arg` of world.`fname`, readable by this script.
local function component_of(fname, name, arg, level)
  if type(name) ~= "string" then
    error(s_format("bad argument #%d to 'world.%s' (component name expected, got %s)", arg,
      fname, type(name)), level + 1)
  end
  local component = components[name]
  if component == nil then unknown(fname, name, components, level + 1) end
  if not can_read[name] then
    deny(s_format('world.%s("%s")', fname, name), s_format("component '%s' is not readable by "
      .. "this script", name), s_format('read={"%s"}', name))
  end
  return component
end

-- The records for an array of names (read raw: no metamethod can show one list to the check
-- and another to the host), appended to `out`.
local function named(fname, list, arg, what, out, level)
  if type(list) ~= "table" then
    error(s_format("bad argument #%d to 'world.%s' (%s must be a table of component names, got "
      .. "%s)", arg, fname, what, type(list)), level + 1)
  end
  local n = rawlen(list)
  too_many(fname, #out + n, level + 1)
  for i = 1, n do out[#out + 1] = component_of(fname, rawget(list, i), arg, level + 1) end
  return out
end

-- world.<fname>(..., "A", "B", ...) or (..., {"A", "B"}, {with = {...}, without = {...}}), the
-- names starting at argument `arg`: the listed components, the `with` and `without` ones, and
-- the options table (nil in the first form). `level`: the script's level from the caller.
local function parse(fname, arg, level, ...)
  local first, options = ...
  local listed, with, without = {}, {}, {}
  if type(first) == "table" then
    if select("#", ...) > 2 then
      error(s_format("bad argument #%d to 'world.%s' (nothing expected after the options)",
        arg + 2, fname), level + 1)
    end
    named(fname, first, arg, "components", listed, level + 1)
    if options ~= nil then
      if type(options) ~= "table" then
        error(s_format("bad argument #%d to 'world.%s' (table of options or nil expected, got "
          .. "%s)", arg + 1, fname, type(options)), level + 1)
      end
      for key, value in next, options do
        if key == "with" then
          named(fname, value, arg + 1, "with", with, level + 1)
        elseif key == "without" then
          named(fname, value, arg + 1, "without", without, level + 1)
        elseif key ~= "limit" or fname ~= "within" then
          error(s_format("world.%s: unknown option '%s'", fname, s_sub(tostring(key), 1, 64)),
            level + 1)
        end
      end
    end
  else
    local n = select("#", ...)
    too_many(fname, n, level + 1)
    for i = 1, n do
      listed[i] = component_of(fname, (select(i, ...)), arg + i - 1, level + 1)
    end
  end
  too_many(fname, #listed + #with + #without, level + 1)
  return listed, with, without, options
end

-- The component indices of the three lists, in order, into `out` after position `count`;
-- returns the new count.
local function indices(out, count, listed, with, without)
  for i = 1, #listed do out[count + i] = listed[i].index end
  count = count + #listed
  for i = 1, #with do out[count + i] = with[i].index end
  count = count + #with
  for i = 1, #without do out[count + i] = without[i].index end
  return count + #without
end

local function host_failed(fname, level)
  error(s_format("world.%s failed in the host (the failure is logged)", fname), level + 1)
end

------------------------------------------------------------------------------------------------
-- Loading the store
------------------------------------------------------------------------------------------------
-- One chunk from h_pull into `list` (LIST) or a store's columns (VALUES); false at the end.
local function take(list, kind, ...)
  if kind == LIST then
    local first, count = ...
    t_move({select(3, ...)}, 1, count, first, list)
    return true
  elseif kind == VALUES then
    local index, first = ...
    batch.fill_columns({select(4, ...)}, 0, first, by_index[index].qcols)
    return true
  end
  if kind ~= 0 then host_failed("query", 4) end
  return false
end

-- A store about to be filled from row 1 (RESET): new tables when the old ones are far larger.
local function prepare(component, rows)
  if component.qcols == nil or component.qcapacity > 4 * rows + 64 then
    local columns = {}
    for f = 1, #component.fields do columns[f] = {} end
    component.qcols, component.qwritten, component.qtables, component.qowned,
      component.qcapacity = columns, {}, {}, {}, 0
  end
end

-- The rows after a load (the host numbered them the same way): RESET numbers the foreign
-- entities of `list` in order, REUSE keeps the first `nf`, APPEND adds those the store lacks.
local function number(component, mode, list, n, nf)
  local rows, ents, r = component.qrow, component.qents, component.qn
  if mode == RESET then rows, ents, r = {}, {}, 0 end
  if mode == REUSE then
    for row = nf + 1, r do rows[ents[row]], ents[row] = nil, nil end
    if r > nf then r = nf end
  else
    for i = 1, n do
      local entity = list[i]
      if slot_of[entity] == nil and rows[entity] == nil then
        r = r + 1
        rows[entity], ents[r] = r, entity
      end
    end
    if mode == RESET and r ~= nf then return false end   -- the instance lists disagree
  end
  component.qrow, component.qents, component.qn = rows, ents, r
  if r > component.qcapacity then component.qcapacity = r end
  return true
end

-- Load what a query over `listed` (unique records) needs: the host's list (unless the copy kept
-- under `key` is current) and the values of the foreign entities in the stores. Returns the
-- list, its length, and whether entry i of the list is row i of every store (no instance in
-- it, and every store numbered from this list: `qaligned`, which appends do not change).
local function load(key, listed, with, without)
  local entry = lists[key]
  local args = {batch_no, entry and entry.version or 0, #listed, #with, #without}
  local count = indices(args, 5, listed, with, without)
  for i = 1, #listed do
    local component = listed[i]
    if component.qstuck == batch_no and component.qread then
      error(s_format("world.query: an earlier query of %s failed in this tick", component.name),
        3)
    end
    count = count + 1
    args[count] = not component.qsynced
  end
  local reply = {h_start(t_unpack(args, 1, count))}
  if reply[1] ~= DONE then host_failed("query", 3) end
  local version, n, nf = reply[2], reply[3], reply[4]
  for i = 1, #listed do
    local component, mode = listed[i], reply[4 + i]
    if mode ~= LOADED then
      component.qsynced, component.qstuck = false, batch_no
      if mode == RESET then prepare(component, nf) end
    end
  end
  local list = (entry and entry.version == version) and entry.list or {}
  while take(list, h_pull()) do end
  if list ~= (entry and entry.list) then
    if entry == nil then
      kept = kept + 1
      if kept > MAX_KEPT then lists, kept = {}, 1 end
    end
    lists[key] = {version = version, list = list}
  end
  for i = 1, #listed do
    local component, mode = listed[i], reply[4 + i]
    if mode ~= LOADED then
      if not number(component, mode, list, n, nf) then host_failed("query", 3) end
      if mode ~= APPEND then component.qaligned = list end
      if component.qbatch ~= batch_no then   -- the first load in this batch: bind
        local gen = component.qgen + 1
        component.qgen, component.qbatch = gen, batch_no
        component.qread, component.qwrite = component.bind(EMPTY, component.qwritten, gen,
          component.qtables, component.qowned, t_unpack(component.qcols, 1, #component.fields))
        loaded[#loaded + 1] = component
      end
      component.qsynced, component.qstuck = true, nil
    end
  end
  local direct = n == nf
  for i = 1, #listed do direct = direct and listed[i].qaligned == list end
  return list, n, direct
end

------------------------------------------------------------------------------------------------
-- world.query
------------------------------------------------------------------------------------------------
local function stale()
  error("world.query: this iterator belongs to an earlier tick (call world.query again)", 3)
end

-- An instance of this script: its components through world.get (the batch cache); nil when
-- one is missing.
local function instance_values(entity, names, k, out)
  for i = 1, k do
    out[i] = w_get(entity, names[i])
    if out[i] == nil then return nil end
  end
  return out
end

-- `direct`: entry i of the list is row i of every store (see load).
local function iterator(list, n, names, records, direct)
  local k, made, i = #records, batch_no, 0
  if k == 2 and direct then   -- the common case, without the buffer
    local read1, read2 = records[1].qread, records[2].qread
    return function()
      if made ~= batch_no then stale() end
      while i < n do
        i = i + 1
        local entity = list[i]
        if not gone[entity] then return entity, read1(i), read2(i) end
      end
    end
  end
  local out = {}
  return function()
    if made ~= batch_no then stale() end
    while i < n do
      i = i + 1
      local entity = list[i]
      if not gone[entity] then
        if direct or slot_of[entity] == nil then
          for j = 1, k do
            local component = records[j]
            out[j] = component.qread(direct and i or component.qrow[entity])
          end
          return entity, t_unpack(out, 1, k)
        end
        if instance_values(entity, names, k, out) then return entity, t_unpack(out, 1, k) end
      end
    end
  end
end

-- Read scope "self": the instance's own entity, when it matches (the batch cache decides).
local function own(entity, listed, with, without)
  for i = 1, #listed do if not w_has(entity, listed[i].name) then return nil end end
  for i = 1, #with do if not w_has(entity, with[i].name) then return nil end end
  for i = 1, #without do if w_has(entity, without[i].name) then return nil end end
  return {entity}, 1
end

local function unique(records)
  local seen, out = {}, {}
  for i = 1, #records do
    local component = records[i]
    if not seen[component] then seen[component], out[#out + 1] = true, component end
  end
  return out
end

local function key_of(listed, with, without)
  local ids = {}
  local count = indices(ids, 0, listed, with, without)
  return s_format("%d,%d:", #listed, #with) .. t_concat(ids, ",", 1, count)
end

local function query(...)
  need_world("query")
  local listed, with, without = parse("query", 1, 2, ...)
  if listed[1] == nil then
    error("bad argument #1 to 'world.query' (component name expected, got no value)", 2)
  end
  local names = {}
  for i = 1, #listed do names[i] = listed[i].name end
  local list, n, direct
  if read_any then
    local key = key_of(listed, with, without)
    local known = memo[key]
    if known and known[1] == epoch then
      list, n, direct = known[2], known[3], known[4]
    else
      list, n, direct = load(key, unique(listed), unique(with), unique(without))
      memo[key] = {epoch, list, n, direct}
    end
  else
    list, n = own(current(), listed, with, without)
    if list == nil then return function() end end
  end
  return iterator(list, n, names, listed, direct)
end

------------------------------------------------------------------------------------------------
-- world.within, world.nearest
------------------------------------------------------------------------------------------------
local function finite(fname, arg, value, what)
  if type(value) ~= "number" or value ~= value or value == huge or value == -huge then
    error(s_format("bad argument #%d to 'world.%s' (%s must be a finite number, got %s)", arg,
      fname, what, value ~= value and "NaN" or type(value) == "number" and tostring(value)
      or type(value)), 4)
  end
end

-- The host call of world.within/nearest (`call`) after the checks, called by them (the
-- script is at level 3 from here).
local function lookup(fname, call, x, y, radius, ...)
  if spatial == false then   -- asked once per attach: the host's answer does not change
    local index = h_spatial()
    if index == HOST_FAILURE then host_failed(fname, 3) end
    spatial = by_index[index] or nil
  end
  if spatial == nil then
    error(s_format("world.%s needs a spatial index: the game enables it with "
      .. "ScriptSystem(..., spatial=(\"Position\", \"x\", \"y\"))", fname), 3)
  end
  finite(fname, 1, x, "x")
  finite(fname, 2, y, "y")
  finite(fname, 3, radius, "radius")
  if radius < 0 then
    error(s_format("bad argument #3 to 'world.%s' (radius must be >= 0)", fname), 3)
  end
  if not can_read[spatial.name] then
    deny("world." .. fname, s_format("component '%s' (the spatial index's) is not readable by "
      .. "this script", spatial.name), s_format('read={"%s"}', spatial.name))
  end
  local only = (not read_any) and current() or nil
  if select("#", ...) == 0 then return call(x, y, radius, MAX_RESULTS, only, 0, 0) end
  local listed, with, without, options = parse(fname, 4, 3, ...)
  local limit = options and rawget(options, "limit")
  if limit == nil then
    limit = MAX_RESULTS
  elseif m_type(limit) ~= "integer" or limit < 1 or limit > MAX_RESULTS then
    error(s_format("world.%s: limit must be an integer from 1 to %d", fname, MAX_RESULTS), 3)
  end
  local args = {}
  local count = indices(args, 0, listed, with, without)
  return call(x, y, radius, limit, only, #listed + #with, #without, t_unpack(args, 1, count))
end

local function ids(status, truncated, ...)
  if status ~= DONE then host_failed("within", 2) end
  return {...}, truncated
end

local function within(x, y, radius, ...)
  need_world("within")
  return ids(lookup("within", h_within, x, y, radius, ...))
end

local function closest(status, entity)
  if status ~= DONE then host_failed("nearest", 2) end
  return entity
end

local function nearest(x, y, radius, ...)
  need_world("nearest")
  return closest(lookup("nearest", h_nearest, x, y, radius, ...))
end

------------------------------------------------------------------------------------------------
-- Set-up
------------------------------------------------------------------------------------------------
-- world.lua's callback context: the running entity (a function), its deny and need_world,
-- world.get/world.has (an instance's components come from them), checks.lua's unknown_component.
local function bind(current_entity, deny_fn, need_world_fn, get, has, unknown_fn)
  current, deny, need_world, w_get, w_has, unknown =
    current_entity, deny_fn, need_world_fn, get, has, unknown_fn
end

-- batch.lua's attach, and the query host functions (h_start, h_pull, h_spatial, h_within,
-- h_nearest, in WorldBindings.functions order after fetch).
local function attach(schema_components, fetch, start, pull, spatial_fn, within_fn, nearest_fn)
  batch_attach(schema_components, fetch)
  components, by_index = schema_components, {}
  for _, component in next, components do
    by_index[component.index] = component
    component.qrow, component.qents, component.qn, component.qgen = {}, {}, 0, 0
    component.qcapacity, component.qsynced = 0, false
  end
  h_start, h_pull, h_spatial, h_within, h_nearest =
    start, pull, spatial_fn, within_fn, nearest_fn
  spatial, lists, kept = false, {}, 0
  unload()
end

local function adopt(order, new_slot_of)
  batch_adopt(order, new_slot_of)
  slot_of = new_slot_of
end

local function destroyed(entity)
  gone[entity] = true
  epoch = epoch + 1
end

local function spawned()
  epoch = epoch + 1
end

return {query = query, within = within, nearest = nearest, reset_cache = reset_cache,
        pending_writes = pending_writes, attach = attach, adopt = adopt, bind = bind,
        find = find, store = store, values = values, destroyed = destroyed, spawned = spawned}
