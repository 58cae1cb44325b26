"""Multi-tenant, both of Mongoose's patterns, behind a tiny asyncio HTTP handler.

  GET /a/<tenant>  one pool for all tenants: conn.use_db(tenant, use_cache=True), with the tenant's
                   model registered on first use.
  GET /b/<tenant>  one connection per tenant, kept in a dict.
Each request counts a visit in the tenant's own database and answers with the count.

    python multi_tenant_http.py mongodb://127.0.0.1:27017/app
"""
import asyncio
import sys
from typing import Dict

import mgconn

URI = sys.argv[1] if len(sys.argv) > 1 else "mongodb://127.0.0.1:27017/app"
BASE = URI.rsplit("/", 1)[0]
SCHEMA = mgconn.Schema({"path": str})

shared = mgconn.create_connection(URI)          # pattern A: one pool
per_tenant: Dict[str, mgconn.Connection] = {}   # pattern B: one connection each


def visits_a(tenant: str) -> mgconn.Model:
    db = shared.use_db(f"tenant_a_{tenant}", use_cache=True)
    return db.models["Visit"] if "Visit" in db.models else db.model("Visit", SCHEMA)


def visits_b(tenant: str) -> mgconn.Model:
    if tenant not in per_tenant:
        per_tenant[tenant] = mgconn.create_connection(f"{BASE}/tenant_b_{tenant}")
    conn = per_tenant[tenant]
    return conn.models["Visit"] if "Visit" in conn.models else conn.model("Visit", SCHEMA)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request = (await reader.readline()).decode().split()
    while (await reader.readline()).strip():
        pass
    _, pattern, tenant = request[1].split("/")
    Visit = visits_a(tenant) if pattern == "a" else visits_b(tenant)
    await Visit.insert_one({"path": request[1]})
    body = f"{tenant}: {await Visit.count_documents()} visits\n".encode()
    writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    writer.close()


async def get(port: int, path: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
    response = (await reader.read()).decode()
    writer.close()
    return response.split("\r\n\r\n", 1)[1].strip()


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    for path in ("/a/acme", "/a/acme", "/a/globex", "/b/acme", "/b/globex", "/b/globex"):
        print(path, "->", await get(port, path))
    server.close()
    await mgconn.disconnect()


asyncio.run(main())
