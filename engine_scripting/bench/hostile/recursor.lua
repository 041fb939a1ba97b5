-- recursor.lua (hostile): recurses without end (not a tail call: every level keeps a frame).
-- The recursion limit stops it every tick until it is disabled.
local function f() return f() + 1 end

function on_update(self) f() end
