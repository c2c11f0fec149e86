#include "netns/netlink.h"

#include <linux/if.h>
#include <netlink/addr.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>
#include <sys/socket.h>

namespace kernelet::netns {

namespace {

// libnl objects, freed by their own functions.
template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const {
    if (p != nullptr) {
      Free(p);
    }
  }
};
using Link = std::unique_ptr<rtnl_link, Deleter<rtnl_link, rtnl_link_put>>;
using Addr = std::unique_ptr<nl_addr, Deleter<nl_addr, nl_addr_put>>;
using RouteAddr = std::unique_ptr<rtnl_addr, Deleter<rtnl_addr, rtnl_addr_put>>;
using Route = std::unique_ptr<rtnl_route, Deleter<rtnl_route, rtnl_route_put>>;

std::unexpected<Error> nlError(int err, const std::string& op, const std::string& what) {
  return makeError(op, what, nl_geterror(err));
}

Result<Addr> parse(const std::string& text) {
  nl_addr* a = nullptr;
  if (int err = nl_addr_parse(text.c_str(), AF_INET, &a); err < 0) {
    return nlError(err, "parse address", text);
  }
  return Addr(a);
}

}  // namespace

Netlink::Netlink(nl_sock* sock) : sock_(sock, nl_socket_free) {}

Result<Netlink> Netlink::open() {
  nl_sock* sock = nl_socket_alloc();
  if (sock == nullptr) {
    return makeError("nl_socket_alloc", "", "out of memory");
  }
  Netlink n(sock);
  if (int err = nl_connect(sock, NETLINK_ROUTE); err < 0) {
    return nlError(err, "connect", "netlink route socket");
  }
  return n;
}

Result<int> Netlink::ifindex(const std::string& name) {
  rtnl_link* l = nullptr;
  if (int err = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &l); err < 0) {
    return nlError(err, "find link", name);
  }
  Link link(l);
  return rtnl_link_get_ifindex(link.get());
}

Result<bool> Netlink::exists(const std::string& name) {
  rtnl_link* l = nullptr;
  int err = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &l);
  Link link(l);
  if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) {
    return false;
  }
  if (err < 0) {
    return nlError(err, "find link", name);
  }
  return true;
}

Result<bool> Netlink::isBridge(const std::string& name) {
  rtnl_link* l = nullptr;
  if (int err = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &l); err < 0) {
    return nlError(err, "find link", name);
  }
  Link link(l);
  return rtnl_link_is_bridge(link.get()) != 0;
}

Result<void> Netlink::createBridge(const std::string& name, int mtu) {
  Link link(rtnl_link_bridge_alloc());
  rtnl_link_set_name(link.get(), name.c_str());
  rtnl_link_set_mtu(link.get(), static_cast<unsigned>(mtu));
  rtnl_link_set_flags(link.get(), IFF_UP);
  if (int err = rtnl_link_add(sock_.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) {
    return nlError(err, "create bridge", name);
  }
  return {};
}

Result<void> Netlink::createVethPair(const std::string& host, const std::string& peer,
                                     int peer_ns_fd, int bridge_ifindex, int mtu) {
  Link veth(rtnl_link_veth_alloc());
  rtnl_link* other = rtnl_link_veth_get_peer(veth.get());  // a new reference, put below
  rtnl_link_set_name(veth.get(), host.c_str());
  rtnl_link_set_mtu(veth.get(), static_cast<unsigned>(mtu));
  rtnl_link_set_master(veth.get(), bridge_ifindex);
  rtnl_link_set_flags(veth.get(), IFF_UP);
  rtnl_link_set_name(other, peer.c_str());
  rtnl_link_set_mtu(other, static_cast<unsigned>(mtu));
  rtnl_link_set_ns_fd(other, peer_ns_fd);
  int err = rtnl_link_add(sock_.get(), veth.get(), NLM_F_CREATE | NLM_F_EXCL);
  rtnl_link_put(other);
  if (err < 0) {
    return nlError(err, "create veth", host);
  }
  return {};
}

Result<void> Netlink::setUp(const std::string& name) {
  rtnl_link* l = nullptr;
  if (int err = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &l); err < 0) {
    return nlError(err, "find link", name);
  }
  Link link(l);
  Link change(rtnl_link_alloc());
  rtnl_link_set_flags(change.get(), IFF_UP);
  if (int err = rtnl_link_change(sock_.get(), link.get(), change.get(), 0); err < 0) {
    return nlError(err, "set link up", name);
  }
  return {};
}

Result<void> Netlink::addAddress(const std::string& name, const std::string& cidr) {
  TRY(int index, ifindex(name));
  TRY(Addr local, parse(cidr));
  RouteAddr addr(rtnl_addr_alloc());
  rtnl_addr_set_ifindex(addr.get(), index);
  rtnl_addr_set_local(addr.get(), local.get());
  rtnl_addr_set_prefixlen(addr.get(), static_cast<int>(nl_addr_get_prefixlen(local.get())));
  int err = rtnl_addr_add(sock_.get(), addr.get(), 0);
  if (err < 0 && err != -NLE_EXIST) {
    return nlError(err, "add address " + cidr, name);
  }
  return {};
}

Result<void> Netlink::addDefaultRoute(const std::string& name, const std::string& gateway) {
  TRY(int index, ifindex(name));
  TRY(Addr dst, parse("0.0.0.0/0"));
  TRY(Addr gw, parse(gateway));
  Route route(rtnl_route_alloc());
  rtnl_route_set_family(route.get(), AF_INET);
  rtnl_route_set_dst(route.get(), dst.get());
  rtnl_nexthop* nh = rtnl_route_nh_alloc();  // owned by the route once added
  rtnl_route_nh_set_gateway(nh, gw.get());
  rtnl_route_nh_set_ifindex(nh, index);
  rtnl_route_add_nexthop(route.get(), nh);
  if (int err = rtnl_route_add(sock_.get(), route.get(), NLM_F_CREATE); err < 0) {
    return nlError(err, "add default route via " + gateway, name);
  }
  return {};
}

Result<void> Netlink::deleteLink(const std::string& name) {
  Link link(rtnl_link_alloc());
  rtnl_link_set_name(link.get(), name.c_str());
  int err = rtnl_link_delete(sock_.get(), link.get());
  if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV) {
    return nlError(err, "delete link", name);
  }
  return {};
}

}  // namespace kernelet::netns
