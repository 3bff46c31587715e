"""Resources (``client.jobs``, ``client.talking_photos``, ...) written once for both
clients.

A resource method is a plan (``_plan.py``) decorated with :class:`operation`. Read from a
resource of ``Client`` it is a plain method returning the plan's result; read from one of
``AsyncClient`` it is a coroutine function returning the same. Type checkers see both:
``Jobs[Sync].get`` is ``(job) -> JobOut``, ``Jobs[Async].get`` is
``(job) -> Coroutine[..., JobOut]`` (the overloads of ``operation.__get__``)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from facecast.client._plan import Plan

P = ParamSpec("P")
T = TypeVar("T")


class Sync:
    """Marks a resource of :class:`facecast.client.Client`."""


class Async:
    """Marks a resource of :class:`facecast.client.AsyncClient`."""


M = TypeVar("M", Sync, Async)


class Runner(Protocol):
    is_async: bool

    def run(self, plan: Plan[Any]) -> Any: ...


class Resource(Generic[M]):
    """One area of the API, bound to a client's transport."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner


class operation(Generic[P, T]):  # lower case: a decorator, like property
    """Makes a plan method a method of both clients (see the module's docstring)."""

    def __init__(self, plan: Callable[Concatenate[Any, P], Plan[T]]) -> None:
        self.plan = plan
        self.__doc__, self.__name__ = plan.__doc__, plan.__name__
        signature = inspect.signature(plan)
        # what help() and IDEs show: the arguments without self, and no Plan[...] type
        self.__signature__ = signature.replace(
            parameters=list(signature.parameters.values())[1:],
            return_annotation=inspect.Signature.empty)

    @overload
    def __get__(self, obj: None, owner: type) -> operation[P, T]: ...
    @overload
    def __get__(self, obj: Resource[Sync], owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: Resource[Async], owner: type
                ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(self, obj: Resource[Any] | None, owner: type) -> Any:
        if obj is None:
            return self
        plan, runner = self.plan, obj._runner
        if runner.is_async:
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                return await runner.run(plan(obj, *args, **kwargs))

            method: Callable[..., Any] = run_async
        else:
            def run(*args: Any, **kwargs: Any) -> Any:
                return runner.run(plan(obj, *args, **kwargs))

            method = run
        functools.update_wrapper(method, self.plan)
        del method.__wrapped__  # type: ignore[attr-defined]  # its signature is ours
        method.__signature__ = self.__signature__  # type: ignore[attr-defined]
        return method
