-- patterns.lua: string.find, string.match, string.gmatch and string.gsub for the sandbox.
-- Runs once per Lua state as `local kit, argcheck, shared = ...`; uses only the kit's original
-- functions, and pattern_compile.lua (shared._patterns) for compiled patterns and their bounds.
-- A call whose worst-case work in lstrlib.c's matcher is provably below kit.c_call_ns runs on the
-- original C function. Every other call runs on a port of that matcher (Lua 5.4.8) with an
-- explicit backtracking stack, so the time-limit hook can stop it and it adds no Lua frames; it
-- gives the same results and the same errors, including the "pattern too complex" depth limit.
local kit, argcheck, shared = ...
local B = kit.base
local type, error, select, tostring = B.type, B.error, B.select, B.tostring
local pcall, getmetatable = B.pcall, kit.debug.getmetatable
local byte, sub = kit.string.byte, kit.string.sub
local c_find, c_match, c_gmatch, c_gsub = kit.string.find, kit.string.match, kit.string.gmatch,
  kit.string.gsub
local concat, unpack = kit.table.concat, kit.table.unpack
local floor, m_max, m_type = kit.math.floor, kit.math.max, kit.math.type
local checkstring, checkinteger = argcheck.checkstring, argcheck.checkinteger

local PC = shared._patterns
local SINGLE, STAR, PLUS, MIN, OPT, OPEN, CLOSE, END, DOLLAR, BAL, FRONT, BREF =
  PC.SINGLE, PC.STAR, PC.PLUS, PC.MIN, PC.OPT, PC.OPEN, PC.CLOSE, PC.END, PC.DOLLAR, PC.BAL,
  PC.FRONT, PC.BREF
local MAXCCALLS, CAP_POS, CACHE_MAX, BUDGET, NS_PER_STEP =
  PC.MAXCCALLS, PC.CAP_POS, PC.CACHE_MAX, PC.BUDGET, PC.NS_PER_STEP
local any_tab, cache_a, cache_g, get_pattern, tables = PC.any_tab, PC.cache_a, PC.cache_g,
  PC.get_pattern, PC.tables
local admits_find, admits_g, admits_anch = PC.admits_find, PC.admits_g, PC.admits_anch
local find_cost, gsub_cost, gmatch_cost, fits = PC.find_cost, PC.gsub_cost, PC.gmatch_cost,
  PC.fits
local MEMO_CAP = 1000000   -- memo entries per match session (bounds its memory)
local memo_left = 0

local function new_memo(P)
  local mk = P.memok
  if not mk then return nil end
  local memo = {}
  memo_left = MEMO_CAP
  for j = 1, P.K do if mk[j] then memo[j] = {} end end
  return memo
end

local ci, cl = {}, {}   -- capture start / length (or CAP_POS), by level from 0
local stk = {}          -- backtracking stack, 5 slots an entry: depth, item, a, b, kind
local K_MAX, K_MIN, K_OPT, K_MEMO = 1, 2, 3, 4

-- match() from item 1 at position s: the end (exclusive) of the match, nil, or false and an
-- error message. Positions are 1-based; n + 1 is the end of the subject.
local function domatch(P, S, n, s, memo)
  local op, set, a1, a2 = P.op, P.set, P.a1, P.a2
  local sp, k, d = 0, 1, 1
  local m1 = memo and memo[1]
  if m1 and m1[s] then return nil end
  while true do
    local o = op[k]
    if o == SINGLE then
      if set[k][byte(S, s)] then s = s + 1; k = k + 1; goto continue end
    elseif o == STAR or o == PLUS or o == MIN or o == OPT then
      local t = set[k]
      if t[byte(S, s)] then
        d = d + 1
        if d > MAXCCALLS then return false, "pattern too complex" end
        local base, at = s, s
        if o == MIN then base = k
        elseif o == OPT then at = s + 1
        else
          at = s + 1
          if t == any_tab then at = n + 1 else while t[byte(S, at)] do at = at + 1 end end
          if o == PLUS then base = s + 1 end
        end
        stk[sp + 1], stk[sp + 2], stk[sp + 3], stk[sp + 4] = d, o == MIN and s or k + 1, base, at
        sp = sp + 5
        stk[sp] = o == MIN and K_MIN or o == OPT and K_OPT or K_MAX
        k, s = k + 1, at
        if memo then
          local mt = memo[k]
          if mt then
            if mt[s] then goto fail end
            memo_left = memo_left - 1
            if memo_left <= 0 then memo = nil end
            stk[sp + 2], stk[sp + 3], stk[sp + 4], stk[sp + 5] = k, mt, s, K_MEMO
            sp = sp + 5
          end
        end
        goto continue
      elseif o ~= PLUS then k = k + 1; goto continue end
    elseif o == OPEN or o == CLOSE then
      d = d + 1
      if d > MAXCCALLS then return false, "pattern too complex" end
      local l = a1[k]
      if o == OPEN then ci[l] = s; cl[l] = a2[k]
      else cl[l] = s - ci[l] end
      k = k + 1
      goto continue
    elseif o == END then return s
    elseif o == DOLLAR then if s == n + 1 then return s end
    elseif o == BAL then
      local b, e = a1[k], a2[k]
      if s <= n and byte(S, s) == b then
        local cont, j = 1, s + 1
        while j <= n do
          local c = byte(S, j)
          if c == e then
            cont = cont - 1
            if cont == 0 then break end
          elseif c == b then cont = cont + 1 end
          j = j + 1
        end
        if j <= n then s = j + 1; k = k + 1; goto continue end
      end
    elseif o == FRONT then
      local t = set[k]
      if not t[s == 1 and 0 or byte(S, s - 1)] and t[byte(S, s) or 0] then
        k = k + 1; goto continue
      end
    elseif o == BREF then
      local l = a1[k]
      local len = cl[l]
      if len >= 0 and s + len - 1 <= n and
        (len == 0 or sub(S, ci[l], ci[l] + len - 1) == sub(S, s, s + len - 1)) then
        s = s + len; k = k + 1; goto continue
      end
    else
      return false, a1[k]
    end
    ::fail::
    while true do
      if sp == 0 then return nil end
      local kind = stk[sp]
      if kind == K_MAX then
        local at = stk[sp - 1] - 1
        if at >= stk[sp - 2] then
          k, d = stk[sp - 3], stk[sp - 4]
          local mt = memo and memo[k]
          if mt then
            while at >= stk[sp - 2] and mt[at] do at = at - 1 end
            if at < stk[sp - 2] then goto pop end
            memo_left = memo_left - 1
            if memo_left <= 0 then memo = nil end
            stk[sp - 1] = at
            stk[sp + 2], stk[sp + 3], stk[sp + 4], stk[sp + 5] = k, mt, at, K_MEMO
            sp = sp + 5
          else
            stk[sp - 1] = at
          end
          s = at
          break
        end
      elseif kind == K_MIN then
        local at = stk[sp - 1]
        local item = stk[sp - 2]
        local ms = memo and memo[item]
        if set[item][byte(S, at)] and not (ms and ms[at + 1]) then
          at = at + 1
          stk[sp - 1] = at
          k, d, s = item + 1, stk[sp - 4], at
          local mt = memo and memo[k]
          if mt then
            if mt[s] then goto fail end
            memo_left = memo_left - 1
            if memo_left <= 0 then memo = nil end
            stk[sp + 2], stk[sp + 3], stk[sp + 4], stk[sp + 5] = k, mt, s, K_MEMO
            sp = sp + 5
          end
          break
        end
        -- Every suffix state (item, x) of this exhausted minimal expansion failed too.
        if ms then
          for x = stk[sp - 3], at do ms[x] = true end
          memo_left = memo_left - (at - stk[sp - 3])
          if memo_left <= 0 then memo = nil end
        end
      elseif kind == K_OPT then
        k, d, s = stk[sp - 3], stk[sp - 4] - 1, stk[sp - 2]
        sp = sp - 5
        break
      else
        stk[sp - 2][stk[sp - 1]] = true
      end
      ::pop::
      sp = sp - 5
    end
    ::continue::
  end
end

local function posrelat(pos, len)
  if pos > 0 then return pos
  elseif pos == 0 then return 1
  elseif pos < -len then return 1
  else return len + pos + 1 end
end

local function getcap(S, i)
  local l = cl[i]
  if l == CAP_POS then return ci[i] end
  return sub(S, ci[i], ci[i] + l - 1)
end

-- push_captures: all captures, or the whole match s..e-1 when there are none and `whole`.
local function captures(P, S, s, e, whole)
  local L = P.level
  if L == 0 then
    if whole then return sub(S, s, e - 1) end
    return
  end
  if L == 1 then return getcap(S, 0) end
  if L == 2 then return getcap(S, 0), getcap(S, 1) end
  local t = {}
  for i = 0, L - 1 do t[i + 1] = getcap(S, i) end
  return unpack(t, 1, L)
end

-- First start position >= s where the pattern's first item can match, or nil.
local function next_start(P, S, n, s)
  local t = P.first
  if not t then return s end
  local ch = P.firstch
  if ch and n - s < BUDGET then return c_find(S, ch, s, true) end
  while s <= n and not t[byte(S, s)] do s = s + 1 end
  if s > n then return nil end
  return s
end

-- lmemfind in windows, each searched by one C call of bounded cost.
local function plain_find(S, p, init)
  local n, m = #S, #p
  if m == 0 then return init, init - 1 end
  local last = n - m + 1
  local W = m_max(1, floor(BUDGET / (m + 1)) - m)
  local pos = init
  while pos <= last do
    local stop = pos + W - 1
    if stop > last then stop = last end
    local r = c_find(sub(S, pos, stop + m - 1), p, 1, true)
    if r then return pos + r - 1, pos + r + m - 2 end
    pos = stop + 1
  end
  return nil
end

-- Called as a tail call of the API functions: error level 2 is the script's call site.
local function find_lua(P, S, init, find)
  local n = #S
  if not P.set then tables(P) end
  local memo = new_memo(P)
  local s = init
  while true do
    if not P.anchored then
      s = next_start(P, S, n, s)
      if not s then return nil end
    end
    local e, err = domatch(P, S, n, s, memo)
    if e then
      if P.unf then error("unfinished capture", 2) end
      if find then return s, e - 1, captures(P, S, s, e, false) end
      return captures(P, S, s, e, true)
    elseif e == false then error(err, 2) end
    if s > n or P.anchored then return nil end
    s = s + 1
  end
end

-- Starts tried one by one, each by a C call of the pattern after "^" (admits_anch bounds it),
-- skipping to the next occurrence of the pattern's first byte when it has one: for calls that
-- fail the bound over the whole subject, where C would fail at the first byte of most starts.
-- After `tries` failed starts, the rest of the subject takes the usual path (fits, else Lua).
local find_at
local function found(P, S, p, n, at, find, tries, r1, ...)
  if r1 ~= nil then return r1, ... end
  if at > n then return nil end
  return find_at(P, S, p, n, at + 1, find, tries - 1)
end
find_at = function(P, S, p, n, at, find, tries)
  local ch = P.firstch
  if ch then
    at = c_find(S, ch, at, true)
    if not at then return nil end
  end
  local f = find and c_find or c_match
  if tries <= 0 then
    if fits(P, S, n) then return f(S, p, at) end
    return find_lua(P, S, at, find)
  end
  return found(P, S, p, n, at, find, tries, f(S, P.ap, at))
end

local function tries_for(P, p, n)
  if not P.ap then P.ap = "^" .. p end
  return 16 + n // 32   -- about the cost of one probe of the subject (fits)
end

local M = {}

local function check_sp(...)
  local s, p = ...
  if type(s) ~= "string" then s = checkstring(2, 1, s, select("#", ...) >= 1) end
  if type(p) ~= "string" then p = checkstring(2, 2, p, select("#", ...) >= 2) end
  return s, p
end

-- The wrappers below look the pattern up first: a hit in cache_a or cache_g (string keys only)
-- shows that it is a string. An integral `init` equal to 1 (or 1.0) needs no other check.

M["string.find"] = function(...)
  local s, p, init, plain = ...
  local P = cache_a[p]
  if type(s) ~= "string" or not P and type(p) ~= "string" then s, p = check_sp(...); P = nil end
  if init ~= nil then
    if init == 1 then init = 1
    elseif m_type(init) ~= "integer" then init = checkinteger(1, 3, init, true) end
  end
  local n = #s
  if plain then
    if (n + 1) * (#p + 1) + 200 <= BUDGET then return c_find(s, p, init, true) end
  else
    P = P or get_pattern(p, false)
    if n <= P.flim or admits_find(P, n) then return c_find(s, p, init) end
    local at = posrelat(init or 1, n)
    if at > n + 1 then return nil end
    if not P.nospecials then
      if not P.anchored and admits_anch(P, n) then
        return find_at(P, s, p, n, at, true, tries_for(P, p, n))
      end
      if fits(P, s, n) then return c_find(s, p, init) end
      return find_lua(P, s, at, true)
    end
    if fits(P, s, n) then return c_find(s, p, init) end
    init = at
  end
  init = posrelat(init or 1, n)
  if init > n + 1 then return nil end
  return plain_find(s, p, init)
end

M["string.match"] = function(...)
  local s, p, init = ...
  local P = cache_a[p]
  if type(s) ~= "string" or not P and type(p) ~= "string" then s, p = check_sp(...); P = nil end
  if init ~= nil then
    if init == 1 then init = 1
    elseif m_type(init) ~= "integer" then init = checkinteger(1, 3, init, true) end
  end
  local n = #s
  P = P or get_pattern(p, false)
  if n <= P.flim or admits_find(P, n) then return c_match(s, p, init) end
  local at = posrelat(init or 1, n)
  if at > n + 1 then return nil end
  if not P.anchored and admits_anch(P, n) then
    return find_at(P, s, p, n, at, false, tries_for(P, p, n))
  end
  if fits(P, s, n) then return c_match(s, p, init) end
  return find_lua(P, s, at, false)
end

local function gmatch_lua(P, S, n, src, lastmatch)
  if not P.set then tables(P) end
  local memo = new_memo(P)
  return function()
    local at = src
    while at <= n + 1 do
      at = next_start(P, S, n, at)
      if not at then return end
      local e, err = domatch(P, S, n, at, memo)
      if e == false then error(err, 2) end
      if e and e ~= lastmatch then
        src, lastmatch = e, e
        if P.unf then error("unfinished capture", 2) end
        return captures(P, S, at, e, true)
      end
      at = at + 1
    end
  end
end

-- gmatch by one anchored C call per start tried, as find_at. Once `tries` starts have failed,
-- the rest goes to C's gmatch when fits admits it (from a start after the last match: C's
-- iterator starts with no last match), else to the Lua matcher.
local function gmatch_at(P, S, p, n, src)
  local tries, ch, L, ap = tries_for(P, p, n), P.firstch, P.level, P.ap
  local lastmatch, it, attempt = 0, nil, nil
  local function got(at, s0, e0, ...)
    if s0 and e0 + 1 ~= lastmatch then
      src, lastmatch = e0 + 1, e0 + 1
      if L == 0 then return sub(S, s0, e0) end
      return ...
    end
    tries = tries - 1
    return attempt(at + 1)
  end
  attempt = function(at)
    if ch and at <= n then at = c_find(S, ch, at, true) or n + 2 end
    if at > n + 1 then src = n + 2; return end
    if tries <= 0 then
      if at > lastmatch and fits(P, S, n, "g") then it = c_gmatch(S, p, at)
      else it = gmatch_lua(P, S, n, at, lastmatch > 0 and lastmatch or nil) end
      return it()
    end
    return got(at, c_find(S, ap, at))
  end
  return function()
    if it then return it() end
    return attempt(src)
  end
end

M["string.gmatch"] = function(...)
  local s, p, init = ...
  local P = cache_g[p]
  if type(s) ~= "string" or not P and type(p) ~= "string" then s, p = check_sp(...); P = nil end
  if init ~= nil then
    if init == 1 then init = 1
    elseif m_type(init) ~= "integer" then init = checkinteger(1, 3, init, true) end
  end
  local n = #s
  P = P or get_pattern(p, true)
  if n <= P.glim or admits_g(P, n) then return c_gmatch(s, p, init) end
  local src = posrelat(init or 1, n)
  if src > n + 1 then src = n + 2 end
  if admits_anch(P, n) then return gmatch_at(P, s, p, n, src) end
  if fits(P, s, n, "g") then return c_gmatch(s, p, init) end
  return gmatch_lua(P, s, n, src, nil)
end

-- A replacement string as parts: text, a capture index (-1: whole match), or false (bad '%').
local rcache, nrcache = {}, 0
local function repl_parts(r)
  local R = rcache[r]
  if R then return R end
  if nrcache >= CACHE_MAX then rcache, nrcache = {}, 0 end
  R = {maxd = 0, err = false}
  local i = 1
  while true do
    local j = c_find(r, "%", i, true)
    if not j then break end
    if j > i then R[#R + 1] = sub(r, i, j - 1) end
    local c = byte(r, j + 1)
    if c == 37 then R[#R + 1] = "%"
    elseif c == 48 then R[#R + 1] = -1
    elseif c and c >= 49 and c <= 57 then
      R[#R + 1] = c - 49
      if c - 48 > R.maxd then R.maxd = c - 48 end
    else R[#R + 1] = false; R.err = true; break end
    i = j + 2
  end
  if not R.err and i <= #r then R[#R + 1] = sub(r, i) end
  rcache[r] = R
  nrcache = nrcache + 1
  return R
end

-- Called by gsub_lua (level 1) at level 2, which the gsub wrapper tail-called: level 3 is the
-- script's call site.
local function add_parts(P, S, s, e, R, out, no)
  for j = 1, #R do
    local x = R[j]
    local tx = type(x)
    if tx == "number" then
      if x < 0 then x = sub(S, s, e - 1)
      elseif x >= P.level then
        if x ~= 0 then error("invalid capture index %" .. (x + 1), 3) end
        x = sub(S, s, e - 1)
      else
        if P.capunf[x] then error("unfinished capture", 3) end
        x = getcap(S, x)
      end
    elseif x == false then error("invalid use of '%' in replacement string", 3) end
    no = no + 1
    out[no] = x
  end
  return no
end

-- The replacement's value, looked up or called inside a C call (a one-shot C gsub), so that a
-- yield from it fails as it does inside lstrlib's gsub.
local function replacement(repl, tr, P, S, s, e)
  local value
  if tr == "table" then
    local key = P.level == 0 and sub(S, s, e - 1) or getcap(S, 0)
    c_gsub("", "^", function() value = repl[key] end)
  else
    local args = {captures(P, S, s, e, true)}
    c_gsub("", "^", function() value = repl(unpack(args, 1, m_max(P.level, 1))) end)
  end
  return value
end

local function gsub_lua(P, S, repl, tr, max_s)
  local n = #S
  if not P.set then tables(P) end
  local memo = new_memo(P)
  local anchor = P.anchored
  local src, lastmatch, count, changed = 1, nil, 0, false
  local out, no, copied = {}, 0, 1
  local R = tr == "string" and repl_parts(repl)
  while count < max_s do
    local s = src
    if not anchor then
      s = next_start(P, S, n, src)
      if not s then break end
    end
    local e, err = domatch(P, S, n, s, memo)
    if e == false then error(err, 2) end
    if e and e ~= lastmatch then
      count = count + 1
      if R then
        if copied < s then no = no + 1; out[no] = sub(S, copied, s - 1) end
        no = add_parts(P, S, s, e, R, out, no)
        copied, changed = e, true
      else
        if P.unf and (tr == "function" or P.capunf[0]) then error("unfinished capture", 2) end
        local v = replacement(repl, tr, P, S, s, e)
        if v then
          local tv = type(v)
          if tv ~= "string" and tv ~= "number" then
            error("invalid replacement value (a " .. tv .. ")", 2)
          end
          if copied < s then no = no + 1; out[no] = sub(S, copied, s - 1) end
          no = no + 1
          out[no] = tostring(v)
          copied, changed = e, true
        end
      end
      src, lastmatch = e, e
    elseif s <= n then src = s + 1
    else break end
    if anchor then break end
  end
  if not changed then return S, count end
  if copied <= n then no = no + 1; out[no] = sub(S, copied, n) end
  return concat(out, "", 1, no), count
end

local function checked_repl(f)
  return function(...)
    local v = f(...)
    if v then
      local tv = type(v)
      if tv ~= "string" and tv ~= "number" then
        error("invalid replacement value (a " .. tv .. ")", 4)
      end
    end
    return v
  end
end

M["string.gsub"] = function(...)
  local s, p, repl, max_s = ...
  local P = cache_a[p]
  if type(s) ~= "string" or not P and type(p) ~= "string" then s, p = check_sp(...); P = nil end
  local n = #s
  local R = rcache[repl]   -- string keys only
  local tr = R and "string" or type(repl)
  if max_s == nil then max_s = n + 1
  elseif m_type(max_s) ~= "integer" then max_s = checkinteger(1, 4, max_s, true) end
  if tr == "number" then repl, tr = tostring(repl), "string"
  elseif tr ~= "string" and tr ~= "table" and tr ~= "function" then
    argcheck.typeerror(1, 3, "string/function/table", repl, select("#", ...) >= 3)
  end
  P = P or get_pattern(p, false)
  local r = tr == "string" and #repl or 64
  if r <= 64 and (n <= P.glim or admits_g(P, n)) or fits(P, s, n, r) then
    if tr == "string" then
      R = R or repl_parts(repl)
      local L = P.level
      if not R.err and R.maxd <= (L > 1 and L or 1) then return c_gsub(s, p, repl, max_s) end
    elseif tr == "function" then
      local r, c = c_gsub(s, p, checked_repl(repl), max_s)
      return r, c
    elseif getmetatable(repl) == nil then
      local ok, r, c = pcall(c_gsub, s, p, repl, max_s)
      if ok then return r, c end
    end
  end
  return gsub_lua(P, s, repl, tr, max_s)
end

M._fast = function(fname, s, p)
  s = type(s) == "number" and tostring(s) or s
  p = type(p) == "number" and tostring(p) or p
  local n = #s
  local P = get_pattern(p, fname == "gmatch")
  if fname == "find" or fname == "match" then return admits_find(P, n) or fits(P, s, n) end
  return admits_g(P, n) or fits(P, s, n, fname == "gmatch" and "g" or 64)
end
M._bound = function(fname, n, p, r, R)
  local P = get_pattern(p, fname == "gmatch")
  if fname == "find" or fname == "match" then return find_cost(P, n, R) * NS_PER_STEP end
  if fname == "gmatch" then return gmatch_cost(P, n, 0, R) * NS_PER_STEP end
  return gsub_cost(P, n, r or 64, R) * NS_PER_STEP
end
M._limits = function(p) local P = get_pattern(p, false); return P.flim, P.glim end
M._cap = function(p, gm) return get_pattern(p, gm).cap end   -- run cap of the last fits()

return M
