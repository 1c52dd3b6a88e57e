# shellcheck shell=sh
# cert-agent-cluster.sh: the Proxmox VE cluster as cert-agent-fleet sees it, read
# by that script from its own directory (not a command): which node runs which
# container (`pvesh`, each node's `pct list`), running a command on that node
# (here, or over the cluster's SSH as Proxmox's own tools do), and the state
# the nodes share in the cluster file system, with this node's directory for
# what a read-only /etc/pve (no quorum) cannot take. pvesh's JSON is parsed
# with awk and every field checked, as a container's answer is.
# It uses cert-agent-fleet's PROG, tmp, TIMEOUT, MAX_BYTES, PCT, CPATH, STATE,
# SHARED, PVE, AUDIT and its bounded, why, clean, is_id and each_ct.
# shellcheck disable=SC2154,SC2034 # set by cert-agent-fleet before it reads this, or for it

# Each argument in single quotes, for the remote shell ssh hands its command line to.
quote() { for qa in "$@"; do printf "'%s' " "$(printf '%s' "$qa" | sed "s/'/'\\\\''/g")"; done; }
# bounded "$1" "$2" argv on node $3: here as it is, elsewhere over the cluster's SSH as
# Proxmox's own tools call it (BatchMode, HostKeyAlias, known_hosts in /etc/pve), no tty,
# nothing forwarded.
bounded_on() {
  bo_f=$1 bo_s=$2 bo_n=$3; shift 3
  if [ -z "$bo_n" ]; then echo "no such container in the cluster" >"$bo_f"; brc=1; return; fi
  if [ "$bo_n" = "$here" ]; then bounded "$bo_f" "$bo_s" "$@"; return; fi
  # Bounded there too (sshd does not signal a command without a tty when the client goes), and
  # here a few seconds longer, so the node's own limit is the one that ends it.
  bo_c=$(quote timeout -k 3 "$bo_s" "$@") bo_ip=$(awk -v n="$bo_n" '$1 == n { print $2 }' "$tmp/nodes")
  # The node's known_hosts in /etc/pve when it has one (as Proxmox's own ssh calls), else the
  # cluster-wide one, /etc/pve/priv/known_hosts (/etc/ssh/ssh_known_hosts links there on a node):
  # never root's own ~/.ssh/known_hosts; a key not in it is refused, never taken.
  kh=$PVE/nodes/$bo_n/ssh_known_hosts; [ -f "$kh" ] || kh=$PVE/priv/known_hosts
  bounded "$bo_f" $((bo_s + 5)) ssh -T -e none -o BatchMode=yes -o StrictHostKeyChecking=yes -o "HostKeyAlias=$bo_n" \
    -o "UserKnownHostsFile=$kh" -o GlobalKnownHostsFile=none -o ConnectTimeout=10 -o ForwardAgent=no -o ForwardX11=no \
    -o ClearAllForwardings=yes "root@$bo_ip" "$bo_c"
}
# Runs argv in container $3 with a clean environment, on its node: bounded "$1" "$2" pct exec ...
in_ct() {
  ict_f=$1 ict_s=$2 ict_id=$3; shift 3
  bounded_on "$ict_f" "$ict_s" "$(node_of "$ict_id")" "$PCT" exec "$ict_id" -- env -i PATH="$CPATH" HOME=/root LANG=C.UTF-8 "$@"
}
# $tmp/cts: "ID STATUS NAME NODE" (STATUS "unreachable": the node's reason in $tmp/why.NODE).
name_of() { awk -v id="$1" '$1 == id { print $3 }' "$tmp/cts"; }
node_of() { awk -v id="$1" '$1 == id { print $4 }' "$tmp/cts"; }
status_of() { awk -v id="$1" '$1 == id { print $2 }' "$tmp/cts"; }
unreachable() { printf 'node %s unreachable: %s' "$(node_of "$1")" "$(cat "$tmp/why.$(node_of "$1")" 2>/dev/null)"; }

# pvesh's JSON in file $1 (an array of flat objects, compact or pretty) as one line per object:
# the values of the keys $2 names, in that order, "-" for a key that is absent, empty or null; a
# value keeps only A-Z a-z 0-9 . _ : / - (other bytes "?", an escaped string "?"). Anything else
# (not an array, a nested value, a key twice, text between fields): the one line "bad".
pv_fields() {
  LC_ALL=C awk -v keys="$2" 'BEGIN { RS = "}"; nk = split(keys, k, " ")
      open1 = "^ *\\[ *\\{"; open2 = "^ *, *\\{"; key1 = "^ *\"[^\"\\\\]*\" *: *"; key2 = "^ *, *\"[^\"\\\\]*\" *: *" }
    function fail() { bad = 1; exit }
    { r = $0; gsub(/[\n\r\t]/, " ", r) }
    done { if (r !~ /^ *$/) fail(); next }
    NR == 1 && r ~ /^ *\[ *\] *$/ { done = 1; next }
    NR > 1 && r ~ /^ *\] *$/ { done = 1; next }
    { if (!sub(NR == 1 ? open1 : open2, "", r)) fail()
      t = r; gsub(/"([^"\\]|\\.)*"/, "", t); if (t ~ /[][{}]/) fail()
      split("", v); first = 1
      while (r !~ /^ *$/) {
        if (!match(r, first ? key1 : key2)) fail()
        key = substr(r, RSTART, RLENGTH); sub(/^[ ,]*"/, "", key); sub(/" *: *$/, "", key); r = substr(r, RSTART + RLENGTH)
        if (!match(r, /^("([^"\\]|\\.)*"|[-+.0-9eE]+|true|false|null)/)) fail()
        val = substr(r, 1, RLENGTH); r = substr(r, RLENGTH + 1); first = 0
        if (val ~ /\\/) val = "?"; gsub(/"/, "", val); gsub(/[^A-Za-z0-9._:\/-]/, "?", val)
        if (key in v) fail(); v[key] = (val == "" || val == "null") ? "-" : val
      }
      o = ""; for (i = 1; i <= nk; i++) o = o (i > 1 ? " " : "") ((k[i] in v) ? v[k[i]] : "-")
      out[++n] = o }
    END { if (bad || !done) { print "bad"; exit } for (i = 1; i <= n; i++) print out[i] }' "$1"
}
# A node's name as Proxmox allows it (mawk, Debian's awk, has no {m,n} in its expressions).
NODE_RE='^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$'

# Which node answers what: this node's name in $here; with pvesh ($cluster=1) the nodes as
# "NAME IP ONLINE" in $tmp/nodes, $quorate 0/1; $tmp/cts (see name_of) for every node, or only
# node $1. A pvesh answer that cannot be used: a message on stderr, $partial=1, this node alone;
# a node entry left out (a field out of its pattern): $partial=1 too, the other nodes kept.
discover() {
  here=$(uname -n | cut -d. -f1) cluster='' quorate='' partial=''
  : >"$tmp/nodes"; : >"$tmp/cts"; : >"$tmp/guests"
  if command -v pvesh >/dev/null 2>&1; then
    # pvesh's stderr (a perl locale warning, say) apart, never parsed.
    blim=8388608 berr=$tmp/pv.err
    bounded "$tmp/pv" "$TIMEOUT" pvesh get /cluster/status --output-format json
    if [ "$brc" = 0 ]; then pv_fields "$tmp/pv" "type name ip online local quorate" >"$tmp/st"; else echo "exit $(why "$TIMEOUT")" >"$tmp/st"; fi
    if [ "$brc" = 0 ] && [ "$(cat "$tmp/st")" != bad ]; then
      bounded "$tmp/pv" "$TIMEOUT" pvesh get /cluster/resources --type vm --output-format json
      if [ "$brc" = 0 ]; then pv_fields "$tmp/pv" "vmid node type status name template" >"$tmp/guests"; else echo "exit $(why "$TIMEOUT")" >"$tmp/guests"; fi
    fi
    blim='' berr=''
    if [ "$(head -c 4 "$tmp/st")" = exit ] || [ "$(head -c 4 "$tmp/guests")" = exit ] || [ "$(cat "$tmp/st")" = bad ] || [ "$(cat "$tmp/guests")" = bad ]; then
      printf '%s: pvesh gave no usable answer (%s): only this node'"'"'s containers\n' "$PROG" "$(clean "$(cat "$tmp/st" "$tmp/guests" | grep -E '^(bad|exit)' | head -n 1)" 80)" >&2
      partial=1 cluster=''
    else
      cluster=1
      LC_ALL=C awk -v node="$NODE_RE" -v bool='^(0|1|true|false)$' -v prog="$PROG" '
        function ip(s,  n, p, i) { if (length(s) > 45) return 0; if (s ~ /^[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*$/) return 1
          if ((n = split(s, p, ".")) != 4) return 0
          for (i = 1; i <= 4; i++) if (p[i] !~ /^[0-9]+$/ || length(p[i]) > 3 || p[i] > 255) return 0; return 1 }
        $1 == "cluster" { print "quorate", ($6 ~ /^(1|true)$/) ? 1 : 0; next }
        $1 != "node" { next }
        $2 ~ node && length($2) <= 63 && ($3 == "-" || ip($3)) && $4 ~ bool && $5 ~ bool {
          print "node", $2, $3, ($4 ~ /^(1|true)$/ ? 1 : 0), ($5 ~ /^(1|true)$/ ? 1 : 0); next }
        { print "left"; print prog ": pvesh /cluster/status: an entry with a field out of its pattern, left out" > "/dev/stderr" }' "$tmp/st" >"$tmp/st2"
      ! grep -q '^left' "$tmp/st2" || partial=1
      quorate=$(awk '$1 == "quorate" { print $2 }' "$tmp/st2")
      l=$(awk '$1 == "node" && $5 == 1 { print $2; exit }' "$tmp/st2"); [ -z "$l" ] || here=$l
      awk '$1 == "node" { print $2, $3, $4 }' "$tmp/st2" >"$tmp/nodes"
    fi
  fi
  printf '%s' "$here" | grep -Eq "$NODE_RE" || here=localhost
  [ -n "$cluster" ] || printf '%s - 1\n' "$here" >"$tmp/nodes"
  if [ -n "${1:-}" ]; then
    awk -v n="$1" '$1 == n' "$tmp/nodes" >"$tmp/nodes.1"
    [ -s "$tmp/nodes.1" ] || usage_error "--node $1: not a node of this cluster (nodes: $(awk '{ printf "%s%s", s, $1; s = " " }' "$tmp/nodes"))"
    mv "$tmp/nodes.1" "$tmp/nodes"
  fi
  each_ct probe "$(awk '{ print $1 }' "$tmp/nodes")"; rm -f "$tmp"/res.*
  while read -r n _; do
    if [ ! -e "$tmp/why.$n" ]; then
      LC_ALL=C awk -v node="$n" 'NR > 1 && $1 ~ /^[1-9][0-9]*$/ && length($1) <= 9 { s = $2; x = (NF >= 4) ? $4 : $3
        if (s !~ /^[a-z]+$/ || length(s) > 20) s = "unknown"; gsub(/[^A-Za-z0-9._-]/, "?", x)
        print $1, s, (x == "" ? "-" : substr(x, 1, 40)), node }' "$tmp/list.$n"
    else # what the cluster knows of the node's containers: guests of type lxc, not templates
      LC_ALL=C awk -v node="$n" '$2 == node && $1 ~ /^[1-9][0-9]*$/ && length($1) <= 9 && $3 == "lxc" && $6 != 1 {
        x = $5; gsub(/[^A-Za-z0-9._-]/, "?", x); print $1, "unreachable", substr(x, 1, 40), node }' "$tmp/guests"
    fi
  done <"$tmp/nodes" | sort -n -k 1,1 | awk '!seen[$1]++' >"$tmp/cts"
}
# `pct list` of node $1 into $tmp/list.$1, or why it did not answer in $tmp/why.$1.
probe() {
  if [ "$(awk -v n="$1" '$1 == n { print $3 }' "$tmp/nodes")" != 1 ]; then echo "offline in the cluster's status" >"$tmp/why.$1"; return; fi
  if [ "$1" != "$here" ] && ! awk -v n="$1" '$1 == n { exit $2 == "-" }' "$tmp/nodes"; then echo "no address in the cluster's status" >"$tmp/why.$1"; return; fi
  bounded_on "$tmp/list.$1" "$TIMEOUT" "$1" "$PCT" list
  [ "$brc" = 0 ] || printf '%s %s: %s\n' "$([ "$1" = "$here" ] && echo pct || echo ssh)" "$(why "$TIMEOUT")" "$(clean "$(grep . "$tmp/list.$1" | tail -n 1)" 120)" >"$tmp/why.$1"
}

# The last re-pin recorded (the cluster's audit or this node's, the later line), printable, or "-".
last_repin() {
  l=$( { tail -n 1 "$AUDIT"; [ "$AUDIT" = "$STATE/repin.log" ] || tail -n 1 "$STATE/repin.log"; } 2>/dev/null | sort | tail -n 1)
  [ -n "$l" ] && clean "$l" 600 || printf -- -
}

# ---- state shared by the nodes --------------------------------------------------
# Writes line $2 to $SHARED/$1 (replaced whole); where the cluster file system is read-only (no
# quorum) to $STATE/$1 instead, which then wins until it is moved up (up). Prints the file.
keep() {
  if mkdir -p "$(dirname "$SHARED/$1")" 2>/dev/null && printf '%s\n' "$2" 2>/dev/null >"$SHARED/$1.tmp" && mv -f "$SHARED/$1.tmp" "$SHARED/$1" 2>/dev/null; then
    [ "$SHARED" = "$STATE" ] || rm -f "$STATE/$1"; printf '%s\n' "$SHARED/$1"
  else
    rm -f "$SHARED/$1.tmp" 2>/dev/null
    mkdir -p "$(dirname "$STATE/$1")" && printf '%s\n' "$2" >"$STATE/$1.tmp" && mv -f "$STATE/$1.tmp" "$STATE/$1" && printf '%s\n' "$STATE/$1"
  fi
}
drop() { rm -f "$SHARED/$1" "$STATE/$1" 2>/dev/null; [ ! -e "$SHARED/$1" ] || printf '%s: cannot remove %s (read-only without quorum?)\n' "$PROG" "$SHARED/$1" >&2; }
# Whether this node's copy of record $1 ($STATE/$1, kept while /etc/pve was read-only) is the one
# to use: yes when it alone is there; where both are there and differ, the cluster's wins unless
# this node's was written later (its modification time), and stderr says which; with $2 = rm the
# losing copy of this node is removed (the same as the cluster's: removed too).
local_wins() {
  [ "$SHARED" != "$STATE" ] && [ -f "$STATE/$1" ] || return 1
  [ -f "$SHARED/$1" ] || return 0
  if cmp -s "$STATE/$1" "$SHARED/$1"; then [ "${2:-}" != rm ] || rm -f "$STATE/$1"; return 1; fi
  if [ -n "$(find "$STATE/$1" -prune -newer "$SHARED/$1")" ]; then
    printf '%s: %s: this node'"'"'s copy differs from the cluster'"'"'s and is newer: this node'"'"'s wins\n' "$PROG" "$1" >&2; return 0
  fi
  printf '%s: %s: this node'"'"'s copy differs from the cluster'"'"'s and is older: the cluster'"'"'s wins%s\n' "$PROG" "$1" \
    "$([ "${2:-}" != rm ] || echo ", this node's removed")" >&2
  [ "${2:-}" != rm ] || rm -f "$STATE/$1"; return 1
}
# Moves what a read-only cluster file system kept on this node up into it, once it is writable
# (unless the cluster's copy is newer: then this node's is removed, see local_wins).
up() { ! local_wins "$1" rm || keep "$1" "$(head -n 1 "$STATE/$1")" >/dev/null; }
# Pending re-pins into $tmp/pending: "ID FINGERPRINT CA (0: none) SINCE cluster|local VOUCHED-BY", each field
# checked (a record that is not: left out, and said); of two copies the newer (local_wins).
pending_list() {
  : >"$tmp/pending"
  for f in "$STATE"/pending/* "$SHARED"/pending/*; do
    id=${f##*/}
    if ! [ -f "$f" ] || ! is_id "$id"; then continue; fi
    ! grep -q "^$id " "$tmp/pending" || continue
    if [ "$f" = "$STATE/pending/$id" ] && [ "$SHARED" != "$STATE" ] && ! local_wins "pending/$id"; then continue; fi
    w=cluster; [ "$f" != "$STATE/pending/$id" ] || [ "$SHARED" = "$STATE" ] || w=local
    head -c 400 "$f" | head -n 1 | LC_ALL=C awk -v id="$id" -v w="$w" -v prog="$PROG" -v f="$f" '
      $1 ~ /^[0-9a-f]+$/ && length($1) == 64 && $2 ~ /^(0|[1-9][0-9]*)$/ && $3 ~ /^[0-9T:-]+Z$/ && NF >= 4 && $0 !~ /[^A-Za-z0-9 ._:@\/-]/ {
        v = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", v); print id, $1, $2, $3, w, v; ok = 1 }
      END { if (!ok) print prog ": " f ": not a pending re-pin (FINGERPRINT CA TIME VOUCHED-BY), left out" > "/dev/stderr" }' >>"$tmp/pending"
  done
}

