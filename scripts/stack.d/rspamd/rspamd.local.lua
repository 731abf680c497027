-- Custom rspamd rules of the dx test stack (loaded via $LOCAL_CONFDIR/rspamd.local.lua).
-- GTUBE short-circuits the scan, so spam tests mark a message with `X-DX-Junk: yes`
-- instead: DX_JUNK adds a large score, the verdict headers then say spam and the
-- global Sieve script files it into Junk.
rspamd_config.DX_JUNK = {
  callback = function(task)
    local h = task:get_header('X-DX-Junk')
    if h and h:lower():match('^%s*yes%s*$') then
      return true
    end
    return false
  end,
  score = 15.0,
  description = 'dx test stack: message carries X-DX-Junk: yes',
  group = 'dx_test',
}
