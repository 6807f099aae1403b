# Shared by the namespace suites: an "internet" bridge, namespaces attached to it, and
# home routers with one host behind MASQUERADE. Source it after `set -euo pipefail`;
# every namespace made through `ns` is deleted by `ns_cleanup` (call it from the EXIT
# trap).
NS_CREATED=()

# ns NAME...: new namespaces with loopback up.
ns() {
    local n
    for n in "$@"; do
        ip netns add "$n"
        NS_CREATED+=("$n")
        ip -n "$n" link set lo up
    done
}

ns_cleanup() {
    local n
    for n in "${NS_CREATED[@]}"; do ip netns del "$n" 2>/dev/null || true; done
}

# bridge: the internet bridge br0 in namespace $INET.
bridge() {
    ip -n "$INET" link add br0 type bridge
    ip -n "$INET" link set br0 up
}

# attach NS IFNAME ADDR/LEN: NS's interface IFNAME on the bridge of namespace $INET
# (IFNAME unique among the attached ones).
attach() {
    ip link add "$2" netns "$1" type veth peer name "p$2" netns "$INET"
    ip -n "$INET" link set "p$2" master br0 up
    ip -n "$1" addr add "$3" dev "$2"
    ip -n "$1" link set "$2" up
}

# home ROUTER HOST WAN NET [HOST_IF] [MASQ_OPTS]: a LAN NET.0/24 between ROUTER (NET.1,
# interface lan) and HOST (NET.2 on HOST_IF, default eth0; default route) behind
# MASQUERADE on WAN; the router drops unsolicited traffic to itself (OpenWrt's default
# on WAN).
home() {
    local router=$1 host=$2 wan=$3 net=$4 hif=${5:-eth0} opts=${6:-}
    ip link add lan netns "$router" type veth peer name "$hif" netns "$host"
    ip -n "$router" addr add "$net.1/24" dev lan
    ip -n "$router" link set lan up
    ip -n "$host" addr add "$net.2/24" dev "$hif"
    ip -n "$host" link set "$hif" up
    ip -n "$host" route replace default via "$net.1"
    ip netns exec "$router" sysctl -qw net.ipv4.ip_forward=1
    # shellcheck disable=SC2086
    ip netns exec "$router" iptables -t nat -A POSTROUTING -o "$wan" -j MASQUERADE $opts
    ip netns exec "$router" iptables -A INPUT -i "$wan" -m conntrack --ctstate NEW -j DROP
}
