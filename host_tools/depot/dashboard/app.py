# depot.dashboard.app: the fleet dashboard (aiohttp), served by `ykt depot serve --http`.
# SPDX-License-Identifier: MIT
#
# One page (static/index.html + app.js + style.css, all local: nothing is fetched from
# the network at run time; the charts are inline SVG drawn by app.js) and JSON endpoints:
#   /api/overview   everything the page shows, in one request
#   /api/fleet /api/daily /api/pending /api/anomalies /api/versions /api/station
#   /api/proposals                         blacklist proposals of the risk loop
#   POST /api/proposals/{id}/approve|reject  an operator's decision, JSON {"by": name}
# The POSTs take only application/json (a page on another site cannot send that without
# a CORS preflight, which this server never grants); the station listens on loopback unless
# told otherwise, and every decision is stored with the operator's name (depot.risk).
# Database reads run in worker threads, each with its own connection (station.db()).
import asyncio
import os

from aiohttp import web

from depot.dashboard import data

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


def make_app(station):
    """station: anything with db() (a per-thread database), stale_hours and status()."""
    app = web.Application()

    async def in_thread(fn, *a):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, fn, *a)

    def with_db(fn):
        def call(*a):
            try:
                return fn(station.db(), *a)
            except Exception:
                drop = getattr(station, "drop_db", None)
                if drop is not None:
                    drop()  # a broken connection is not reused
                raise
        return call

    async def api(request, fn, *a):
        try:
            body = await in_thread(with_db(fn), *a)
        except Exception as e:  # the database went away: say so, keep serving
            return web.json_response({"error": "database: %s: %s" % (type(e).__name__, e)},
                                     status=503)
        return web.json_response(body, dumps=_dumps)

    def status():
        st = getattr(station, "status", None)
        return st() if st is not None else None

    async def overview(request):
        return await api(request, lambda db: data.overview(db, station.stale_hours, status()))

    async def fleet(request):
        return await api(request, lambda db: data.fleet(db, station.stale_hours))

    async def daily(request):
        return await api(request, data.daily)

    async def pending(request):
        return await api(request, data.pending)

    async def anomalies(request):
        return await api(request, data.anomalies)

    async def versions(request):
        return await api(request, data.versions)

    async def proposals(request):
        return await api(request, data.proposals)

    async def decide(request):
        if request.content_type != "application/json":
            return web.json_response({"error": "send JSON"}, status=415)
        try:
            body = await request.json()
            by = body.get("by") if isinstance(body, dict) else None
            pid = int(request.match_info["id"])
        except (ValueError, TypeError):
            return web.json_response({"error": "bad request"}, status=400)
        approve = request.match_info["verdict"] == "approve"
        try:
            p = await in_thread(with_db(data.decide), pid, by, approve)
        except ValueError as e:
            return web.json_response({"error": str(e)}, status=400)
        except LookupError as e:
            return web.json_response({"error": str(e)}, status=409)
        except Exception as e:  # the database went away
            return web.json_response({"error": "database: %s: %s" % (type(e).__name__, e)},
                                     status=503)
        log = getattr(station, "log", None)
        if callable(log):
            log("proposal_decided", id=pid, card=p["card"], state=p["state"], by=p["approved_by"])
        return web.json_response(p, dumps=_dumps)

    async def station_status(request):
        return web.json_response(status(), dumps=_dumps)

    async def index(request):
        return web.FileResponse(os.path.join(STATIC, "index.html"))

    app.router.add_get("/", index)
    app.router.add_get("/api/overview", overview)
    app.router.add_get("/api/fleet", fleet)
    app.router.add_get("/api/daily", daily)
    app.router.add_get("/api/pending", pending)
    app.router.add_get("/api/anomalies", anomalies)
    app.router.add_get("/api/versions", versions)
    app.router.add_get("/api/station", station_status)
    app.router.add_get("/api/proposals", proposals)
    app.router.add_post(r"/api/proposals/{id:\d+}/{verdict:approve|reject}", decide)
    app.router.add_static("/static/", STATIC)
    return app


def _dumps(x):
    import json

    return json.dumps(x, default=str)


async def start(station, hostport):
    """Serve the dashboard on the running loop; -> (runner, (host, port) bound)."""
    from depot.serve import hostport as hp

    host, port = hp(hostport)
    runner = web.AppRunner(make_app(station), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][:2] if runner.addresses else (host, port)
    return runner, bound
