-- tables.lua: the sandbox's replacements for table.move, table.insert, table.remove, table.sort,
-- table.concat, table.unpack and string.rep, which behave exactly as Lua 5.4.8's C functions
-- (ltablib.c, lstrlib.c) but never spend longer than kit.c_call_ns inside one C call.
-- A call whose C cost is provably below c_call_ns (plain tables, integer arguments, sizes under
-- calibrated limits) goes straight to the C function; every other call runs here as Lua code that
-- the time-limit hook can interrupt, with C's checks, messages and order of metamethod calls.
-- Runs once per Lua state as `local kit, argcheck = ...`; uses the kit's original functions and
-- argcheck.lua's lauxlib-style checks. Returns {["table.move"] = fn, ...}.
local kit, argcheck = ...
local B = kit.base
local type, error, select, rawget, rawlen, pcall = B.type, B.error, B.select, B.rawget,
  B.rawlen, B.pcall
local d_getmetatable, getinfo = kit.debug.getmetatable, kit.debug.getinfo
local T, S, M = kit.table, kit.string, kit.math
local t_move, t_insert, t_remove, t_sort = T.move, T.insert, T.remove, T.sort
local t_concat, t_unpack = T.concat, T.unpack
local s_rep, s_sub, s_find, s_format, s_gsub, s_reverse = S.rep, S.sub, S.find, S.format,
  S.gsub, S.reverse
local m_type, m_tointeger, m_ult, m_random = M.type, M.tointeger, M.ult, M.random
local maxinteger = M.maxinteger
-- argcheck's opt* tail-call their check* (a frame short of the level they are given), so the
-- optional arguments are checked here with check* directly.
local checkinteger, checkstring = argcheck.checkinteger, argcheck.checkstring
local argerror, typeerror = argcheck.argerror, argcheck.typeerror

local BUDGET = kit.c_call_ns
local FAST = BUDGET > 0
-- Worst-case ns per step of the C loops, about 3x what this machine measured for large arrays
-- (scratch calib.py: shift 12, move into a hash part 103, unpack 13, concat of floats 1180,
-- sort 30-40 per comparison of numbers and 55-100 of short strings, strcoll 15 per NUL byte).
local SHIFT_NS, MOVE_NS, UNPACK_NS, CONCAT_NS = 40, 300, 40, 3600
local CMP_NUM_NS, CMP_STR_NS, CMP_BYTE_NS = 120, 300, 45
local SHIFT_MAX, MOVE_MAX = BUDGET / SHIFT_NS, BUDGET / MOVE_NS
local UNPACK_MAX, CONCAT_MAX = BUDGET / UNPACK_NS, BUDGET / CONCAT_NS
local INT_MAX = 2147483647
local STACK_MAX = 1000000      -- LUAI_MAXSTACK: unpack can never return this many values
local RANLIMIT = 100
local RND_NS = 2500            -- l_randomizePivot's clock() and time(), 1 us measured, per 2 elements
local NEG_INF = -M.huge
local CONCAT_CHUNK = 1024      -- values joined per C call on the Lua path
local LONG_STRINGS = 4096      -- compare longer string pairs piecewise (strcoll cost per NUL)
local PIECE = 65536
local STR_LT_MAX = CMP_STR_NS + LONG_STRINGS // 2 * CMP_BYTE_NS   -- sort_lt's `<` is short

------------------------------------------------------------------------------------------------
-- Running Lua-path loops like C runs them
------------------------------------------------------------------------------------------------
-- luaL_error from inside a loop: raised as {[LERR] = msg}, re-raised by `run` at the caller of the
-- wrapper, where luaL_where(L, 1) puts it.
local LERR = {}
local function lerror(msg) error({[LERR] = msg}, 0) end
local SRC = getinfo(1, "S").short_src
-- Calls f(a..f_) from inside a C function (gsub's replacement callback) so that, as inside the C
-- original, a yield from a metamethod or comparator fails. Errors the VM raises in this file get
-- this file's position; a C function's errors carry none, so it is removed.
local function run(f, a, b, c, d, e, g)
  local r1
  local ok, err = pcall(s_gsub, "", "^", function() r1 = f(a, b, c, d, e, g) end)
  if ok then return r1 end
  if type(err) == "table" then
    local msg = rawget(err, LERR)
    if msg ~= nil then error(msg, 3) end
  elseif type(err) == "string" and s_sub(err, 1, #SRC + 1) == SRC .. ":" then
    local _, last = s_find(err, "^:%d+: ", #SRC + 1)
    if last then err = s_sub(err, last + 1) end
  end
  error(err, 0)
end

-- ltablib's checktab: a table, or a value whose metatable has the needed fields.
-- A C function called by a wrapper puts the wrapper's position on its luaL_error messages;
-- C would put the caller's there.
local function reraise(err)
  if type(err) == "string" and s_sub(err, 1, #SRC + 1) == SRC .. ":" then
    local _, last = s_find(err, "^:%d+: ", #SRC + 1)
    if last then error(s_sub(err, last + 1), 3) end
  end
  error(err, 0)
end

-- Calls f from a Lua frame of this file, where luaL_where(L, 1) points.
local function via(f, ...) return f(...) end
local function results(ok, ...)
  if ok then return ... end
  reraise(...)
end

local function checktab(arg, v, present, r, w, l)
  if type(v) ~= "table" then
    local mt = d_getmetatable(v)
    if mt == nil or (r and rawget(mt, "__index") == nil) or (w and rawget(mt, "__newindex") == nil)
       or (l and rawget(mt, "__len") == nil) then
      typeerror(2, arg, "table", v, present)
    end
  end
end

-- luaT_objtypename, for the VM's own messages.
local function objtypename(v)
  local t = type(v)
  if t == "table" or t == "userdata" then
    local mt = d_getmetatable(v)
    local name = mt and rawget(mt, "__name")
    if type(name) == "string" then return name end
  end
  return t
end

local function len_of(t) return #t end
-- luaL_len, called from a wrapper's body.
local function getn(t)
  local n = m_tointeger(run(len_of, t))
  if n == nil then error("object length is not an integer", 3) end
  return n
end

------------------------------------------------------------------------------------------------
-- insert, remove, move
------------------------------------------------------------------------------------------------
local function set(t, k, v) t[k] = v end
local function shift_up(t, e, pos, v)
  if pos < e then
    for i = e, pos + 1, -1 do t[i] = t[i - 1] end
  end
  t[pos] = v
end

-- Fast paths: a table without a metatable (so #t is its raw border and no metamethod runs),
-- arguments C can neither reject nor loop long on; C's cost to append is O(log #t).
local function insert(...)
  local t, pos, v = ...
  local nargs = select("#", ...)
  if FAST and type(t) == "table" and d_getmetatable(t) == nil then
    if nargs == 2 then return t_insert(t, pos) end
    if nargs == 3 and m_type(pos) == "integer" then
      local e = #t + 1
      if pos >= 1 and pos <= e and e - pos < SHIFT_MAX then return t_insert(t, pos, v) end
    end
  end
  checktab(1, t, nargs >= 1, true, true, true)
  local e = getn(t) + 1
  if nargs == 2 then
    run(set, t, e, pos)
  elseif nargs == 3 then
    pos = checkinteger(1, 2, pos, true)
    if not m_ult(pos - 1, e) then argerror(1, 2, "position out of bounds") end
    run(shift_up, t, e, pos, (select(3, ...)))
  else
    error("wrong number of arguments to 'insert'", 2)
  end
end

local function shift_down(t, pos, size)
  local v = t[pos]
  if pos < size then
    for i = pos, size - 1 do t[i] = t[i + 1] end
    pos = size
  end
  t[pos] = nil
  return v
end

local function remove(...)
  local t, pos = ...
  if FAST and type(t) == "table" and d_getmetatable(t) == nil then
    if pos == nil then return t_remove(t) end
    if m_type(pos) == "integer" then
      local size = #t
      if (pos == size or (pos >= 1 and pos <= size + 1)) and size - pos < SHIFT_MAX then
        return t_remove(t, pos)
      end
    end
  end
  checktab(1, t, select("#", ...) >= 1, true, true, true)
  local size = getn(t)
  if pos == nil then pos = size else pos = checkinteger(1, 2, pos, true) end
  if pos ~= size and m_ult(size, pos - 1) then argerror(1, 2, "position out of bounds") end
  return (run(shift_down, t, pos, size))
end

local function move_loop(a1, f, e, t, a2, other)
  local last = e - f
  if t > e or t <= f or (other and a1 ~= a2) then
    for i = 0, last do a2[t + i] = a1[f + i] end
  else
    for i = last, 0, -1 do a2[t + i] = a1[f + i] end
  end
end

local function move(...)
  local a1, f, e, t, a2 = ...
  -- `x == 1` (1 or 1.0, which C takes as 1) spares a math.type call
  if FAST and (f == 1 or m_type(f) == "integer") and m_type(e) == "integer"
     and (t == 1 or m_type(t) == "integer") and type(a1) == "table" and d_getmetatable(a1) == nil
     and (a2 == nil or type(a2) == "table" and d_getmetatable(a2) == nil) then
    local d = e - f
    if e < f or (d >= 0 and d < MOVE_MAX and t <= maxinteger - d) then return t_move(a1, f, e, t, a2) end
  end
  local nargs = select("#", ...)
  f = checkinteger(1, 2, f, nargs >= 2)
  e = checkinteger(1, 3, e, nargs >= 3)
  t = checkinteger(1, 4, t, nargs >= 4)
  local dst, tt = a1, 1
  if a2 ~= nil then dst, tt = a2, 5 end
  checktab(1, a1, nargs >= 1, true, false, false)
  checktab(tt, dst, true, false, true, false)
  if e >= f then
    if not (f > 0 or e < maxinteger + f) then argerror(1, 3, "too many elements to move") end
    if not (t <= maxinteger - (e - f)) then argerror(1, 4, "destination wrap around") end
    run(move_loop, a1, f, e, t, dst, tt ~= 1)
  end
  return dst
end

------------------------------------------------------------------------------------------------
-- concat, unpack
------------------------------------------------------------------------------------------------
local function concat_loop(t, sep, i, last)
  local parts, buf, nb = {}, {}, 0
  local function add(k)
    local v = t[k]
    local tv = type(v)
    if tv ~= "string" and tv ~= "number" then
      lerror(s_format("invalid value (%s) at index %d in table for 'concat'", tv, k))
    end
    nb = nb + 1
    buf[nb] = v
    if nb == CONCAT_CHUNK then
      parts[#parts + 1] = t_concat(buf, sep)
      buf, nb = {}, 0
    end
  end
  if i < last then
    for k = i, last - 1 do add(k) end
  end
  if i <= last then add(last) end
  if nb > 0 then parts[#parts + 1] = t_concat(buf, sep) end
  return t_concat(parts, sep)
end

local function concat(...)
  local t, sep, i, j = ...
  if FAST and type(t) == "table" and d_getmetatable(t) == nil and (sep == nil or type(sep) == "string") then
    local first = (i == nil or i == 1) and 1 or (m_type(i) == "integer" and i)
    local last = j == nil and #t or (m_type(j) == "integer" and j)
    if first and last and (last < first or last - first >= 0 and last - first < CONCAT_MAX) then
      -- C's only possible error here is a value that is not a string or number; called from
      -- pcall, C puts no position on it, so it gets the caller's, as luaL_where(L, 1) in C.
      local ok, r = pcall(t_concat, t, sep, i, j)
      if ok then return r end
      if type(r) == "string" and s_find(r, "^invalid value %(") then error(r, 2) end
      error(r, 0)
    end
  end
  checktab(1, t, select("#", ...) >= 1, true, false, true)
  local last = getn(t)
  if sep == nil then sep = "" else sep = checkstring(1, 2, sep, true) end
  if i == nil then i = 1 else i = checkinteger(1, 3, i, true) end
  if j ~= nil then last = checkinteger(1, 4, j, true) end
  return (run(concat_loop, t, sep, i, last))
end

local EMPTY = {}
local function read_range(t, i, n)
  local copy = {}
  for k = 0, n - 1 do copy[k + 1] = t[i + k] end
  return copy
end

-- C's unpack reads no argument count: unpack() fails as unpack(nil) does.
local function unpack(t, i, j)
  if FAST and type(t) == "table" and d_getmetatable(t) == nil then
    local first = (i == nil or i == 1) and 1 or (m_type(i) == "integer" and i)
    local last = j == nil and #t or (m_type(j) == "integer" and j)
    if first and last then
      if first > last then return end
      local d = last - first
      if d >= 0 and d < UNPACK_MAX then
        if d < 200 then return t_unpack(t, first, last) end   -- the stack has room
        return results(pcall(via, t_unpack, t, first, last))
      end
    end
  end
  if i == nil then i = 1 else i = checkinteger(1, 2, i, true) end
  local e
  if j == nil then
    local tt, mt = type(t), d_getmetatable(t)
    if tt ~= "table" and tt ~= "string" and (mt == nil or rawget(mt, "__len") == nil) then
      error("attempt to get length of a " .. objtypename(t) .. " value", 0)
    end
    e = getn(t)
  else
    e = checkinteger(1, 3, j, true)
  end
  if i > e then return end
  local n = e - i
  if not m_ult(n, INT_MAX) or n + 1 >= STACK_MAX or not pcall(t_unpack, EMPTY, 1, n + 1) then
    error("too many results to unpack", 2)
  end
  local mt = d_getmetatable(t)
  if type(t) ~= "table" and (mt == nil or rawget(mt, "__index") == nil) then
    error("attempt to index a " .. objtypename(t) .. " value", 0)
  end
  return t_unpack(run(read_range, t, i, n + 1), 1, n + 1)
end

------------------------------------------------------------------------------------------------
-- sort: ltablib's auxsort in Lua
------------------------------------------------------------------------------------------------
-- l_strcmp(a, b) < 0 for long strings: strcoll runs once per NUL-separated segment, so compare
-- the segment holding the first difference, found with string equality a piece at a time.
local function strlt(a, b)
  if a == b then return false end
  local la, lb = #a, #b
  local lim = la < lb and la or lb
  local k = 1
  while k <= lim and s_sub(a, k, k + PIECE - 1) == s_sub(b, k, k + PIECE - 1) do
    k = k + PIECE
  end
  local lo = lim + 1
  if k <= lim then
    local hi = k + PIECE - 1
    lo = k
    if hi > lim then hi = lim end
    hi = hi + 1
    while lo < hi do
      local mid = (lo + hi) // 2
      if s_sub(a, k, mid) == s_sub(b, k, mid) then lo = mid + 1 else hi = mid end
    end
  end
  local start = 1
  local back = s_find(s_reverse(s_sub(a, 1, lo - 1)), "\0", 1, true)
  if back then start = lo - back + 1 end
  local i, j = start, start
  while true do
    local za = s_find(a, "\0", i, true) or la + 1
    local zb = s_find(b, "\0", j, true) or lb + 1
    local sa, sb = s_sub(a, i, za - 1), s_sub(b, j, zb - 1)
    if sa < sb then return true elseif sb < sa then return false end
    if zb > lb then return false end
    if za > la then return true end
    i, j = za + 1, zb + 1
  end
end

-- auxsort's pivot: the middle, or a random point of the middle half of a large range
local function choose_pivot(lo, up, rnd)
  if up - lo < RANLIMIT or rnd == 0 then return (lo + up) // 2 end
  local r4 = (up - lo) // 4
  return rnd % (r4 * 2) + (lo + r4)
end

local function default_lt(a, b)
  if type(a) == "string" and type(b) == "string" and #a + #b > LONG_STRINGS then
    return strlt(a, b)
  end
  return a < b
end

local INVALID = "invalid order function for sorting"
local function auxsort(t, lo, up, rnd, lt, fin)
  while lo < up do
    if fin and fin(t, lo, up) then return end
    local a, b = t[lo], t[up]
    if lt(b, a) then t[lo] = b; t[up] = a end
    if up - lo == 1 then return end
    local p = choose_pivot(lo, up, rnd)
    a, b = t[p], t[lo]
    if lt(a, b) then
      t[p] = b; t[lo] = a
    else
      b = t[up]
      if lt(b, a) then t[p] = b; t[up] = a end
    end
    if up - lo == 2 then return end
    local pivot = t[p]
    t[p] = t[up - 1]; t[up - 1] = pivot
    local i, j = lo, up - 1
    while true do
      i = i + 1
      a = t[i]
      while lt(a, pivot) do
        if i == up - 1 then lerror(INVALID) end
        i = i + 1
        a = t[i]
      end
      j = j - 1
      b = t[j]
      while lt(pivot, b) do
        if j < i then lerror(INVALID) end
        j = j - 1
        b = t[j]
      end
      if j < i then
        t[up - 1] = a; t[i] = pivot
        break
      end
      t[i] = b; t[j] = a
    end
    p = i
    local n
    if p - lo < up - p then
      auxsort(t, lo, p - 1, rnd, lt, fin)
      n = p - lo
      lo = p + 1
    else
      auxsort(t, p + 1, up, rnd, lt, fin)
      n = up - p
      up = p - 1
    end
    if lo < up and (up - lo) // 128 > n then rnd = m_random(1, INT_MAX) end
  end
end

-- Worst case of C's auxsort on n elements: a partition of m elements makes at most m + 4
-- comparisons and leaves at least one element on each side, so at most (n^2 + 12n)/4 + 4 in all
-- (scratch/tables2/dp.py); and at most one re-randomization (clock() and time()) per level.
local function sort_cost(n, cmp_ns) return ((n * n + 12.0 * n) * 0.25 + 4) * cmp_ns + n * RND_NS end
-- CMP_NUM_NS when t[1..n] are all numbers and none is NaN, else nil; raises on values that are
-- neither numbers nor numeric strings (a `for` takes no metamethod), which pcall turns into nil.
local function number_cost(t, n)
  for k = 1, n do
    local v = t[k]
    for _ = v, NEG_INF do end
    if v + 0 ~= v then return nil end   -- a numeric string, or NaN
  end
  return CMP_NUM_NS
end

-- ns per comparison of `<` over t[1..n] when all are numbers or all strings, else nil.
local function cmp_ns(t, n)
  local v = t[1]
  if type(v) == "number" then
    for i = 2, n do
      if type(t[i]) ~= "number" then return nil end
    end
    return CMP_NUM_NS
  elseif type(v) == "string" then
    local longest = 0
    for i = 1, n do
      local s = t[i]
      if type(s) ~= "string" then return nil end
      if #s > longest then longest = #s end
    end
    return CMP_STR_NS + longest * CMP_BYTE_NS
  end
end

-- For plain tables sorted with `<`: C sorts a copy of each range that is provably cheap; its
-- auxsort over 1..m picks the same pivots as over lo..up.
local function c_sort_range(t, lo, up)
  local copy = {t_unpack(t, lo, up)}
  t_sort(copy)
  t_move(copy, 1, up - lo + 1, lo, t)
end

local function finisher(per)
  return function(t, lo, up)
    if sort_cost(up - lo + 1, per) >= BUDGET then return false end
    c_sort_range(t, lo, up)
    return true
  end
end

-- A C comparator called from C has no name but its global one ("math.ult"); so it has when
-- called through pcall.
local function c_comparator(cmp)
  return function(a, b)
    local ok, r = pcall(cmp, a, b)
    if ok then return r end
    error(r, 0)
  end
end

-- auxsort for NaN-free numbers or strings under LONG_STRINGS / 2 bytes, with `<` inline, and
-- ranges whose C cost is provably small sorted by C on a copy.
local function sort_lt(t, lo, up, rnd, per)
  while lo < up do
    local m = up - lo + 1
    if sort_cost(m, per) < BUDGET then return c_sort_range(t, lo, up) end
    local a, b = t[lo], t[up]
    if b < a then t[lo] = b; t[up] = a end
    if m == 2 then return end
    local p = choose_pivot(lo, up, rnd)
    a, b = t[p], t[lo]
    if a < b then
      t[p] = b; t[lo] = a
    else
      b = t[up]
      if b < a then t[p] = b; t[up] = a end
    end
    if m == 3 then return end
    local pivot = t[p]
    t[p] = t[up - 1]; t[up - 1] = pivot
    local i, j = lo, up - 1
    while true do
      i = i + 1; a = t[i]
      while a < pivot do
        if i == up - 1 then lerror(INVALID) end
        i = i + 1; a = t[i]
      end
      j = j - 1; b = t[j]
      while pivot < b do
        if j < i then lerror(INVALID) end
        j = j - 1; b = t[j]
      end
      if j < i then t[up - 1] = a; t[i] = pivot; break end
      t[i] = b; t[j] = a
    end
    local n
    if i - lo < up - i then
      sort_lt(t, lo, i - 1, rnd, per)
      n = i - lo
      lo = i + 1
    else
      sort_lt(t, i + 1, up, rnd, per)
      n = up - i
      up = i - 1
    end
    if lo < up and (up - lo) // 128 > n then rnd = m_random(1, INT_MAX) end
  end
end

local function sort_lua(t, n, cmp, per)
  local lt = default_lt
  if cmp ~= nil then lt = getinfo(cmp, "S").what == "C" and c_comparator(cmp) or cmp end
  auxsort(t, 1, n, 0, lt, per and finisher(per))
end

local function sort(...)
  local t, cmp = ...
  if FAST and type(t) == "table" and d_getmetatable(t) == nil then
    local n = rawlen(t)
    if n < 2 then return end
    if cmp == nil then
      local ok, per = pcall(number_cost, t, n)
      local total = ok and per   -- NaN-free numbers, or strings: C cannot raise on them
      if not total then
        per = cmp_ns(t, n)
        total = per and type(t[1]) == "string"
      end
      if per and sort_cost(n, per) < BUDGET then
        if total then return t_sort(t) end
        return results(pcall(via, t_sort, ...))
      end
      if total and per <= STR_LT_MAX then run(sort_lt, t, 1, n, 0, per) return end
    elseif type(cmp) == "function" and n < INT_MAX and getinfo(cmp, "S").what ~= "C" then
      return results(pcall(via, t_sort, ...))   -- the hook reaches into every comparison
    end
  end
  checktab(1, t, select("#", ...) >= 1, true, true, true)
  local n = getn(t)
  if n > 1 then
    if n >= INT_MAX then argerror(1, 1, "array too big") end
    if cmp ~= nil and type(cmp) ~= "function" then typeerror(1, 2, "function", cmp, true) end
    local per = FAST and cmp == nil and type(t) == "table" and d_getmetatable(t) == nil
      and cmp_ns(t, n) or nil
    run(sort_lua, t, n, cmp, per)
  end
end

------------------------------------------------------------------------------------------------
-- string.rep: C's cost is the result's length, or n empty loops for an empty piece
------------------------------------------------------------------------------------------------
-- REP_CAP[n] (n integral in 1..64; 3.0 reads [3], and C takes it as 3): the longest #s + #sep
-- whose n copies fit in INT_MAX. SEP_LEN[sep]: #sep, for up to 32 short separators seen before.
local REP_CAP, SEP_LEN, seps = {}, {[""] = 0}, 1
for n = 1, FAST and 64 or 0 do REP_CAP[n] = INT_MAX // n end
local function rep(...)
  local s, n, sep = ...
  local cap = REP_CAP[n]
  if cap == nil and FAST and m_type(n) == "integer" and n > 64 then cap = INT_MAX // n end
  if cap and type(s) == "string" then
    local lsep = sep == nil and 0 or SEP_LEN[sep]
    if lsep == nil and type(sep) == "string" then
      lsep = #sep
      if lsep <= 40 and seps < 32 then SEP_LEN[sep], seps = lsep, seps + 1 end
    end
    local l = lsep and #s + lsep
    if l and l <= cap and (l > 0 or n <= 64) then return s_rep(s, n, sep) end
  end
  local nargs = select("#", ...)
  s, n = checkstring(1, 1, s, nargs >= 1), checkinteger(1, 2, n, nargs >= 2)
  if sep == nil then sep = "" else sep = checkstring(1, 3, sep, true) end
  local l = #s + #sep
  if n <= 0 or l == 0 then return "" end
  if l > INT_MAX // n then error("resulting string too large", 2) end
  return s_rep(s, n, sep)
end

return {
  ["table.move"] = move, ["table.insert"] = insert, ["table.remove"] = remove,
  ["table.sort"] = sort, ["table.concat"] = concat, ["table.unpack"] = unpack, ["string.rep"] = rep,
  _strlt = strlt, _sort_cost = sort_cost,
}
