"""The framework ceiling: the fastest a Django view can answer under the shop's gunicorn settings on this machine.

One view returning the same small JSON body as /healthz, no installed apps, no middleware, no database. `make bench`
serves it with the same gunicorn.conf.py, worker count and access-log setting as the shop, in the same run, and
reports every catalog route as a fraction of it: the share of the framework's best that the shop keeps.
"""
