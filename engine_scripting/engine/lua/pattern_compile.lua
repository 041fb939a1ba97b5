-- pattern_compile.lua: compiles Lua patterns for patterns.lua, and bounds their cost in C.
-- Runs once per Lua state as `local kit = ...`; uses only the kit's original functions.
-- Provides `_patterns`: the opcodes of a compiled pattern, `get_pattern` (a bounded cache of
-- compiled patterns), and the cost model that decides which calls may run on the C matcher: for
-- each pattern, the longest subject on which lstrlib.c's worst case stays below kit.c_call_ns.
local kit = ...
local B = kit.base
local type = B.type
local byte, char, sub, rep = kit.string.byte, kit.string.char, kit.string.sub, kit.string.rep
local c_find = kit.string.find
local floor = kit.math.floor

-- Worst-case nanoseconds per unit of the cost model (item_cost below). Calibrated as C time /
-- model cost over pathological inputs (.-b, a*b, %a*b, 90-byte sets, a?^8 b, %b(), back-references,
-- plain find, gsub with %0 x30) on 3 KB to 300 KB subjects; the worst ratio was 1.05 ns/unit
-- (%a*b); 2.5 leaves a margin of 2.4 (docs/performance.md).
local NS_PER_STEP = 2.5
local BUDGET = (kit.c_call_ns or 0) / NS_PER_STEP   -- model steps one C call may take
local MAXCCALLS, MAXCAPTURES, CAP_UNF, CAP_POS = 200, 32, -1, -2
local CACHE_MAX = 256

-- Opcodes of a compiled pattern; one per item, in pattern order, END last.
local SINGLE, STAR, PLUS, MIN, OPT, OPEN, CLOSE, END, DOLLAR, BAL, FRONT, BREF, ERR =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13

-- 256-entry membership tables (keys 0..255) for %-classes, computed by the C matcher itself so
-- that the locale's ctype agrees.
local class_tabs = {}
local function class_tab(cl)
  local t = class_tabs[cl]
  if t then return t end
  t = {}
  local pat = "^%" .. char(cl)
  for c = 0, 255 do t[c] = c_find(char(c), pat) ~= nil end
  class_tabs[cl] = t
  return t
end

local function is_class_letter(cl)
  local l = cl >= 65 and cl <= 90 and cl + 32 or cl
  return l == 97 or l == 99 or l == 100 or l == 103 or l == 108 or l == 112 or l == 115
    or l == 117 or l == 119 or l == 120 or l == 122
end

local lit_tabs = {}
local function lit_tab(c)
  local t = lit_tabs[c]
  if t == nil then
    t = {}
    for x = 0, 255 do t[x] = x == c end
    lit_tabs[c] = t
  end
  return t
end

local any_tab = {}
for x = 0, 255 do any_tab[x] = true end

-- Membership table of the set p[i..ec] ('[' at i, ']' at ec), as matchbracketclass reads it.
local function set_tab(p, i, ec)
  local B0 = function(j) return byte(p, j) or 0 end
  local mem, diff, classes = {}, {}, {}
  for x = 0, 256 do diff[x] = 0 end
  local sig = true
  local q = i
  if B0(q + 1) == 94 then sig = false; q = q + 1 end
  while true do
    q = q + 1
    if q >= ec then break end
    local c = B0(q)
    if c == 37 then
      q = q + 1
      local cl = B0(q)
      if is_class_letter(cl) then classes[cl] = true
      else diff[cl] = diff[cl] + 1; diff[cl + 1] = diff[cl + 1] - 1 end
    elseif B0(q + 1) == 45 and q + 2 < ec then
      local lo, hi = c, B0(q + 2)
      if lo <= hi then diff[lo] = diff[lo] + 1; diff[hi + 1] = diff[hi + 1] - 1 end
      q = q + 2
    else
      diff[c] = diff[c] + 1; diff[c + 1] = diff[c + 1] - 1
    end
  end
  local acc = 0
  for x = 0, 255 do acc = acc + diff[x]; mem[x] = acc > 0 end
  for cl in B.next, classes do
    local t = class_tab(cl)
    for x = 0, 255 do if t[x] then mem[x] = true end end
  end
  if not sig then for x = 0, 255 do mem[x] = not mem[x] end end
  return mem
end

-- classend: index after the single-char class starting at i (bt: the pattern's bytes), or nil
-- and an error message.
local function classend(bt, m, i)
  local c = bt[i]
  i = i + 1
  if c == 37 then
    if i > m then return nil, "malformed pattern (ends with '%')" end
    return i + 1
  elseif c == 91 then
    if bt[i] == 94 then i = i + 1 end
    repeat
      if i > m then return nil, "malformed pattern (missing ']')" end
      local cc = bt[i]
      i = i + 1
      if cc == 37 and i <= m then i = i + 1 end
    until bt[i] == 93
    return i + 1
  end
  return i
end

local function class_of(p, i, ep)
  local c = byte(p, i)
  if c == 46 then return any_tab end
  if c == 37 then
    local cl = byte(p, i + 1)
    return is_class_letter(cl) and class_tab(cl) or lit_tab(cl)
  end
  if c == 91 then return set_tab(p, i, ep - 1) end
  return lit_tab(c)
end

-- Byte sets by key: a byte c (the literal c), 256 + c (%c), DOT ('.') or the text of a bracket
-- class: membership tables for the Lua matcher, built when it first runs a pattern, and masks of
-- four 64-bit integers for compile's analysis.
local DOT = 512
local brackets, nbrackets, masks, bmasks, nbmasks = {}, 0, {}, {}, 0
local function tab_of(key)
  if type(key) == "number" then
    if key == DOT then return any_tab end
    if key < 256 then return lit_tab(key) end
    local cl = key - 256
    return is_class_letter(cl) and class_tab(cl) or lit_tab(cl)
  end
  local t = brackets[key]
  if t then return t end
  if nbrackets >= 64 then brackets, nbrackets = {}, 0 end
  t = class_of(key, 1, #key + 1)
  brackets[key], nbrackets = t, nbrackets + 1
  return t
end
local function mask_of(key)
  local m = masks[key] or bmasks[key]
  if m then return m end
  local t = tab_of(key)
  m = {0, 0, 0, 0}
  for x = 0, 255 do
    if t[x] then local i = (x >> 6) + 1; m[i] = m[i] | (1 << (x & 63)) end
  end
  if type(key) == "number" then masks[key] = m
  else
    if nbmasks >= 256 then bmasks, nbmasks = {}, 0 end
    bmasks[key], nbmasks = m, nbmasks + 1
  end
  return m
end
local function key_text(key)
  if type(key) == "string" then return key end
  if key == DOT then return "." end
  if key < 256 then return char(key) end
  return "%" .. char(key - 256)
end
local CHARS = {}
for c = 0, 255 do CHARS[c] = char(c) end

-- A compiled pattern keeps its items in one flat array `it`, six slots an item from (k-1)*6:
-- opcode, class width, argument (class text; capture level; %b's open byte; message), second
-- argument (capture kind; %b's close byte), always (the suffix from k matches everywhere) and
-- c0 (see item_cost; false unless cheap). Few tables: compiling a new pattern is mostly their
-- allocation. The Lua matcher's arrays are made by `tables` when it first runs the pattern.
local function tables(P)
  local it, op, set, a1, a2 = P.it, {}, {}, {}, {}
  for k = 1, P.K do
    local b = (k - 1) * 6
    local o = it[b + 1]
    op[k], a2[k] = o, it[b + 4]
    if o == SINGLE or o == STAR or o == PLUS or o == MIN or o == OPT or o == FRONT then
      set[k] = tab_of(it[b + 3])
    else a1[k] = it[b + 3] end
  end
  P.op, P.a1, P.a2 = op, a1, a2
  if P.firstk then P.first = set[P.firstk] end
  -- Failed (item, position) states can be remembered when the outcome of a state depends on
  -- nothing else: no back-reference reads capture contents, and no path reaches MAXCCALLS.
  if not P.has_bref and P.nrec + 1 <= MAXCCALLS then
    local memok, any, later = {}, false, false
    for j = P.K, 1, -1 do
      local o = op[j]
      if o == STAR or o == PLUS or o == MIN or o == OPT or o == BAL then later = true end
      memok[j] = later
      if later then any = true end
    end
    if any then P.memok = memok end
  end
  P.set = set
  return set
end

-- Quantified classes other than '.', for the run probes (runs of '.' are the whole subject):
-- cid[k], the index of item k's class among them.
local function quantified(P)
  local it = P.it
  local cid, qtext, qw, qfront, qfw, qlit, seen = {}, {}, {}, {}, {}, {}, {}
  for j = 1, P.K do
    local b = (j - 1) * 6
    local o, key = it[b + 1], it[b + 3]
    if (o == STAR or o == PLUS or o == MIN) and key ~= DOT then
      local q = seen[key]
      if not q then
        q = #qtext + 1
        local txt = key_text(key)
        local w1 = it[b + 2] == 1
        qlit[q] = w1 and txt
        if w1 then   -- a literal byte: escape it unless alphanumeric
          local c = byte(txt)
          if not (c >= 48 and c <= 57 or c >= 65 and c <= 90 or c >= 97 and c <= 122) then
            txt = "%" .. txt
          end
        end
        local set = byte(txt) == 91 and txt or "[" .. txt .. "]"
        seen[key], qtext[q], qw[q], qfront[q], qfw[q] = q, txt, #txt, "%f" .. set, #set
      end
      cid[j] = q
    end
  end
  P.cid, P.qtext, P.qw, P.qfront, P.qfw, P.qlit = cid, qtext, qw, qfront, qfw, qlit
  P.qprobe, P.qR = {}, {}
  return cid
end

-- Worst-case model costs of one match() call from item 1 (floats: may be inf). Unit: one byte
-- compared or copied; entering an item (a match() call) costs CALLW units. Each suffix k of the
-- pattern has two costs: F, of a call that fails, and T, of any call (T >= F). A loop that tries
-- the suffix at several positions stops at its first success: all attempts but the last fail.
-- A quantifier over a class other than '.' loops at most R + 1 times when no run of its class in
-- the subject is longer than R (R = n: no knowledge). always[k]: the suffix never fails (F = 0).
-- cheap (c0[k] set): a quantifier whose next mandatory item cannot match a byte of its own class,
-- so every retry inside its run fails on that item at cost c0[k] (a backtrack cannot succeed).
local CALLW = 4.0
local function item_cost(P, n, R)
  local it = P.it
  n = n + 0.0
  local cid = R and R < n and (P.cid or quantified(P))
  R = cid and R + 0.0 or n
  local F, T = 0.0, CALLW + 0.0
  local capmax
  for k = P.K, 1, -1 do
    local b = (k - 1) * 6
    local o, wk, nxt = it[b + 1], it[b + 2], it[b + 11]   -- it[b + 11]: always[k + 1]
    local F1, T1 = nxt and CALLW + 0.0 or F, T   -- CALLW: the calibrated floor
    if o == END then F, T = 0.0, CALLW + 0.0
    elseif o == DOLLAR then F, T = CALLW + 0.0, CALLW + 0.0
    elseif o == SINGLE then F, T = F1 + wk + CALLW, T1 + wk + CALLW
    elseif o == STAR or o == PLUS or o == MIN then
      local r, c0 = cid and cid[k] and R or n, it[b + 6]
      if nxt then
        T = (o == MIN and 1 or r + 1) * wk + T1 + CALLW
        F = o == PLUS and wk + CALLW or 0.0
      elseif c0 then
        local x = (r + 1) * wk + r * c0 + CALLW
        F, T = x + F1, x + T1
      elseif o == MIN then
        F, T = (r + 1) * (F1 + wk) + CALLW, r * (F1 + wk) + T1 + wk + CALLW
      else
        F, T = (r + 1) * (wk + F1) + CALLW, (r + 1) * wk + r * F1 + T1 + CALLW
      end
    elseif o == OPT then F, T = wk + 2 * F1 + CALLW, wk + F1 + T1 + CALLW
    elseif o == OPEN or o == CLOSE then F, T = F1 + CALLW, T1 + CALLW
    elseif o == BAL then F, T = F1 + n + CALLW, T1 + n + CALLW
    elseif o == BREF then
      -- memcmp of the capture: at most its longest possible length.
      if not capmax then
        capmax = {}
        local len, lv = {}, {}
        for j = 1, P.K do
          local bj = (j - 1) * 6
          local oj, l = it[bj + 1], it[bj + 3]
          local add = (oj == SINGLE or oj == OPT) and 1 or oj == FRONT and 0
            or (oj == STAR or oj == PLUS or oj == MIN) and (cid and cid[j] and R or n)
            or (oj == BAL or oj == BREF) and n or 0
          if oj == OPEN then len[l] = 0; lv[l] = true
          elseif oj == CLOSE then lv[l] = false; capmax[l] = len[l] end
          for v in B.next, lv do if lv[v] then len[v] = len[v] + add end end
        end
      end
      local cm = capmax[it[b + 3]] or n
      if cm > n then cm = n end
      F, T = F1 + cm + CALLW, T1 + cm + CALLW
    elseif o == FRONT then F, T = F1 + 2 * wk + CALLW, T1 + 2 * wk + CALLW
    else F, T = 1 / 0, 1 / 0 end
    if it[b + 5] then F = 0.0 end
  end
  return F, T
end

-- Whole-call costs: find/match try n+1 starts (all but the last fail); gmatch (all iterations)
-- and gsub make at most 2(n+1) match() calls, of which at most n/minlen + 1 succeed when every
-- match is at least minlen >= 1 bytes long. Overheads (calibrated): 16 units per attempt; per
-- success 64, 32 per capture pushed and 16 per byte of the replacement string (r bytes; 64 for
-- a function or table, 0 for gmatch: a `%1` makes a string; 256 when a position capture must be
-- formatted as a number), plus copying the %0/%n captures.
local function find_cost(P, n, R)
  n = n + 0.0
  local F, T = item_cost(P, n, R)
  local C = T
  if not (P.anchored or P.it[5]) then C = n * F + T end
  return C + (P.level + 1) * (n + 1) + 400
end
local function gsub_cost(P, n, r, R)
  n = n + 0.0
  local F, T = item_cost(P, n, R)
  local ns = P.minlen > 0 and floor(n / P.minlen) + 1.0 or 2 * (n + 1)
  local per = T + 64 + (P.poscap and 256 or 16) * r + 32 * (P.level + 1)
  return 2 * (n + 1) * (F + 16) + ns * per + (P.level + 2 + r) * (n + 1) + 400
end

-- One call of a gmatch iterator (each returns to Lua, where the time limit applies): at most
-- n + 2 attempts, the last of which may succeed.
local function gmatch_cost(P, n, _, R)
  n = n + 0.0
  local F, T = item_cost(P, n, R)
  return (n + 2) * (F + 16) + T + 64 + 32 * (P.level + 1) + (P.level + 1) * (n + 1) + 400
end

-- Whether the static bound admits a subject of length n (costs grow with n). Each pattern
-- remembers the longest length admitted (flim, glim) and the shortest refused (fbad, gbad), so a
-- new pattern costs one evaluation of the model, not a search for its limit.
local function admits_find(P, n)
  if n <= P.flim then return true end
  if n >= P.fbad then return false end
  if find_cost(P, n) <= BUDGET then P.flim = n return true end
  P.fbad = n
  return false
end

local function admits_g(P, n)
  if n <= P.glim then return true end
  if n >= P.gbad then return false end
  local cost = P.gmatch and gmatch_cost(P, n) or gsub_cost(P, n, 64)
  if cost <= BUDGET then P.glim = n return true end
  P.gbad = n
  return false
end

-- One anchored C call (the pattern after "^", at any init) and a plain find of one byte: the
-- calls with which patterns.lua tries starts one by one. Bounds as admits_find (alim, abad).
local function admits_anch(P, n)
  if n <= P.alim then return true end
  if n >= P.abad then return false end
  local _, T = item_cost(P, n)
  if T + (P.level + 3) * (n + 1.0) + 600 <= BUDGET then P.alim = n return true end
  P.abad = n
  return false
end

-- Subject-aware bound, for calls that fail the static one (n > flim or glim). For a cap R on
-- the runs of the pattern's quantified classes, the cost is the model's cost with runs <= R plus
-- that of the probes which check the cap. Per class c, C finds without quantifiers, of R + 1
-- copies of c: plain (a literal byte: lmemfind, as plain find's bound) or a pattern (at most
-- R + 1 items per start); or, cheaper in the model for large R, "^" and the copies (a run at the
-- start) and "%f[c]" and the copies (a run after a byte not in c), which tests the frontier at
-- each start and scans only from the start of a run, at most min(L, R + 1) + 1 items for a run
-- of length L: at most 2(n + 1) items in all, whatever R is. R is the largest cap whose total
-- fits the budget (cached for the last n); the call may run on C only if no probe finds a run
-- longer than R. The frontier form costs more per byte in practice: used only when needed.
local function probe_cost(P, q, n, R)
  local item = P.qw[q] + CALLW
  local front = (R + 2) * item + (n + 1) * (2 * P.qfw[q] + 2 * CALLW + 2 * item) + 1000
  local scan = P.qlit[q] and (n + 1) * (R + 2) + 200 or (n + 1) * ((R + 1) * item + CALLW + 1) + 400
  if scan <= front then return scan, false end
  return front, true
end
local function probes_cost(P, n, R)
  local c = 0.0
  for q = 1, #P.qw do c = c + probe_cost(P, q, n, R) end
  return c
end
local function call_cost(P, n, r, R)
  if r == "g" then return gmatch_cost(P, n, 0, R) end
  return r and gsub_cost(P, n, r, R) or find_cost(P, n, R)
end
local function total_cost(P, n, R, r) return call_cost(P, n, r, R) + probes_cost(P, n, R) end
local RUN_MAX = 4096   -- longest cap: probe strings stay small (memory limit)
local function best_cap(P, n, r)
  if total_cost(P, n, 0, r) > BUDGET then return -1 end
  local lo, hi = 0, n < RUN_MAX and n or RUN_MAX
  if total_cost(P, n, hi, r) <= BUDGET then return hi end
  while hi - lo > 1 do
    local mid = floor((lo + hi) / 2)
    if total_cost(P, n, mid, r) <= BUDGET then lo = mid else hi = mid end
  end
  return lo
end

-- May this call (find/match: r nil; gmatch: "g"; gsub: r the replacement's length) run on C?
local function fits(P, S, n, r)
  if not P.fast then return false end
  if call_cost(P, n, r) <= BUDGET then return true end
  if not P.qtext then quantified(P) end
  local qtext = P.qtext
  if #qtext == 0 then return false end
  local R
  if P.capn == n and P.capr == r then R = P.cap
  else
    R = best_cap(P, n, r)
    P.capn, P.capr, P.cap = n, r, R
  end
  if R < 0 then return false end
  local qprobe, qR, qlit = P.qprobe, P.qR, P.qlit
  for q = 1, #qtext do
    local _, front = probe_cost(P, q, n, R)
    if qR[q] ~= R then
      qR[q] = R
      qprobe[q] = rep(qlit[q] and not front and qlit[q] or qtext[q], R + 1)
    end
    local pr = qprobe[q]
    if front then
      if c_find(S, "^" .. pr) or c_find(S, P.qfront[q] .. pr) then return false end
    elseif c_find(S, pr, 1, qlit[q] and true) then return false end
  end
  return true
end

local SPECIALS = "[%^%$%*%+%?%.%(%[%%%-]"
local NO_CAPS = {}

local function bytes(p, m)
  if m <= 4096 then return {byte(p, 1, m)} end
  local t = {}
  for j = 1, m, 4096 do
    local c = {byte(p, j, j + 4095)}
    kit.table.move(c, 1, #c, j, t)
  end
  return t
end

local function compile(p, anchored, gm)
  local m = #p
  local i = anchored and 2 or 1
  local bt, it, capstate = bytes(p, m), {}, nil
  local level, nrec, k, b, has_bref, minlen = 0, 0, 0, 0, false, 0
  while true do
    k = k + 1
    local c, e2 = bt[i], bt[i + 1]
    local o, wk, x1, x2 = ERR, 0, false, false
    if i > m then o = END
    elseif c == 40 then
      if level >= MAXCAPTURES then x1 = "too many captures"
      else
        capstate = capstate or {}
        o, x1, x2 = OPEN, level, e2 == 41 and CAP_POS or CAP_UNF
        capstate[level] = x2
        i = e2 == 41 and i + 2 or i + 1
        level = level + 1; nrec = nrec + 1
      end
    elseif c == 41 then
      local l = level - 1
      while l >= 0 and capstate[l] ~= CAP_UNF do l = l - 1 end
      if l < 0 then x1 = "invalid pattern capture"
      else o, x1 = CLOSE, l; capstate[l] = 0; nrec = nrec + 1; i = i + 1 end
    elseif c == 36 and i == m then o = DOLLAR
    elseif c == 37 and e2 == 98 then
      if i + 2 >= m then x1 = "malformed pattern (missing arguments to '%b')"
      else o, x1, x2 = BAL, bt[i + 2], bt[i + 3]; i = i + 4; minlen = minlen + 2 end
    elseif c == 37 and e2 == 102 then
      i = i + 2
      if bt[i] ~= 91 then x1 = "missing '[' after '%f' in pattern"
      else
        local ep, msg = classend(bt, m, i)
        if not ep then x1 = msg else o, x1, wk = FRONT, sub(p, i, ep - 1), ep - i; i = ep end
      end
    elseif c == 37 and e2 and e2 >= 48 and e2 <= 57 then
      local l = e2 - 49
      if l < 0 or l >= level or capstate[l] == CAP_UNF then
        x1 = "invalid capture index %" .. (l + 1)
      else o, x1 = BREF, l; has_bref = true; i = i + 2 end
    else
      local ep, msg = classend(bt, m, i)
      if not ep then x1 = msg
      else
        wk = ep - i
        if c == 91 then x1 = sub(p, i, ep - 1)
        elseif c == 37 then x1 = 256 + e2
        elseif c == 46 then x1 = DOT
        else x1 = c end
        local q = bt[ep]
        if q == 42 then o = STAR elseif q == 43 then o = PLUS
        elseif q == 45 then o = MIN elseif q == 63 then o = OPT
        else o = SINGLE; ep = ep - 1 end
        if o ~= SINGLE then nrec = nrec + 1 end
        if o == SINGLE or o == PLUS then minlen = minlen + 1 end
        i = ep + 1
      end
    end
    it[b + 1], it[b + 2], it[b + 3], it[b + 4] = o, wk, x1, x2
    b = b + 6
    if o == END or o == DOLLAR or o == ERR then break end
  end
  local has_err = it[b - 5] == ERR
  local P = {it = it, K = k, level = level, anchored = anchored, capunf = NO_CAPS, unf = false,
             minlen = minlen, has_bref = has_bref, nrec = nrec}
  for l = 0, level - 1 do
    if capstate[l] == CAP_UNF then
      if P.capunf == NO_CAPS then P.capunf = {} end
      P.capunf[l] = true; P.unf = true
    end
    if capstate[l] == CAP_POS then P.poscap = true end
  end
  -- always (slot 5): the suffix from the item matches at every position (given no depth error,
  -- which `fast` excludes); atend: it matches at the end of the subject. '.*' and '.-' reach
  -- the end. f1..f4 (nil: none): a set such that the suffix after the current item fails at
  -- cost <= c0s at a position whose byte is not in it.
  local f1, f2, f3, f4, c0s
  local alw, atend = false, false
  for j = k, 1, -1 do
    local bj = (j - 1) * 6
    local o = it[bj + 1]
    local c0 = false
    if (o == STAR or o == PLUS or o == MIN) and f1 then
      local mk = mask_of(it[bj + 3])
      if mk[1] & f1 == 0 and mk[2] & f2 == 0 and mk[3] & f3 == 0 and mk[4] & f4 == 0 then
        c0 = c0s
      end
    end
    if o == END then alw, atend, f1 = true, true, nil
    elseif o == DOLLAR then
      alw, atend = false, true
      f1, f2, f3, f4, c0s = 0, 0, 0, 0, 2 * CALLW
    elseif o == STAR or o == MIN or o == OPT then
      alw = alw or (o ~= OPT and it[bj + 3] == DOT and atend)
      if f1 then
        local mk = mask_of(it[bj + 3])
        f1, f2, f3, f4 = mk[1] | f1, mk[2] | f2, mk[3] | f3, mk[4] | f4
        c0s = c0s + it[bj + 2] + 2 * CALLW
      end
    elseif o == OPEN or o == CLOSE then
      if f1 then c0s = c0s + 2 * CALLW end
    else
      alw, atend = false, false
      if o == SINGLE or o == PLUS or o == BAL then
        local mk = mask_of(it[bj + 3])
        f1, f2, f3, f4 = mk[1], mk[2], mk[3], mk[4]
        c0s = (o == BAL and 1 or it[bj + 2]) + 2 * CALLW
      else f1 = nil end
    end
    it[bj + 5], it[bj + 6] = alw, c0
  end
  -- First item needing a character (after position captures / opens): skip starts quickly.
  local j = 1
  while it[j * 6 - 5] == OPEN do j = j + 1 end
  local oj = it[j * 6 - 5]
  if oj == SINGLE or oj == PLUS then
    P.firstk = j
    local c = it[3]
    if j == 1 and it[2] == 1 and c ~= DOT then P.firstch = CHARS[c] end
  end
  P.nospecials = c_find(p, SPECIALS) == nil
  local fast = not has_err and not P.unf and nrec + 1 <= MAXCCALLS
  P.fast = fast
  P.flim, P.glim, P.gmatch = -1, -1, gm
  P.fbad = fast and 1 / 0 or -1
  P.gbad, P.alim, P.abad = P.fbad, -1, P.fbad
  return P
end

-- Compiled patterns by text: cache_a for find/match/gsub (a leading '^' anchors), cache_g for
-- gmatch. Cleared in place when full, so that callers may keep the tables.
local cache_a, cache_g, ncache = {}, {}, 0
local function get_pattern(p, gm)
  local c = gm and cache_g or cache_a
  local P = c[p]
  if P then return P end
  if ncache >= CACHE_MAX then
    for key in B.next, cache_a do cache_a[key] = nil end
    for key in B.next, cache_g do cache_g[key] = nil end
    ncache = 0
  end
  P = compile(p, not gm and byte(p, 1) == 94, gm)
  c[p] = P
  ncache = ncache + 1
  return P
end

return {_patterns = {
  SINGLE = SINGLE, STAR = STAR, PLUS = PLUS, MIN = MIN, OPT = OPT, OPEN = OPEN, CLOSE = CLOSE,
  END = END, DOLLAR = DOLLAR, BAL = BAL, FRONT = FRONT, BREF = BREF, ERR = ERR,
  MAXCCALLS = MAXCCALLS, CAP_POS = CAP_POS, CACHE_MAX = CACHE_MAX,
  BUDGET = BUDGET, NS_PER_STEP = NS_PER_STEP, any_tab = any_tab,
  cache_a = cache_a, cache_g = cache_g, get_pattern = get_pattern, tables = tables,
  find_cost = find_cost, gsub_cost = gsub_cost, gmatch_cost = gmatch_cost, fits = fits,
  admits_find = admits_find, admits_g = admits_g, admits_anch = admits_anch,
}}
