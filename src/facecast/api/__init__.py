"""HTTP APIs: the native REST API and the vendor-compatible ones, on one FastAPI app.

No business logic lives here: routes validate wire models, call
:class:`facecast.service.core.Service` and render what it returns.
"""
