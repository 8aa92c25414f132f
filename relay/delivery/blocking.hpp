#pragma once
// Runs blocking work (fsync, crypt(3)) on the thread pool and resumes the
// calling coroutine on its own executor with the result or the exception.
//
// GCC 12 destroys some temporaries of a co_await full-expression twice
// (seen as a double free of a lambda's captured string under ASan), so
// callers pass a named function object, which is copied here, and the
// relay avoids non-trivial temporaries in co_await expressions.
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace subrelay::relay {

template <class F>
auto run_blocking(boost::asio::thread_pool& pool, const F& f) -> boost::asio::awaitable<std::invoke_result_t<const F&>> {
    namespace asio = boost::asio;
    using result_t = std::invoke_result_t<const F&>;
    auto ex = co_await asio::this_coro::executor;
    if constexpr (std::is_void_v<result_t>) {
        co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::exception_ptr)>(
            [&pool, ex](auto handler, F fn) {
                asio::post(pool, [handler = std::move(handler), fn = std::move(fn), ex]() mutable {
                    std::exception_ptr error;
                    try {
                        fn();
                    } catch (...) {
                        error = std::current_exception();
                    }
                    // Moved, not copied: the exception is then released on the
                    // caller's thread alone (the pool keeps no reference to it).
                    asio::post(ex, [handler = std::move(handler), error = std::move(error)]() mutable {
                        std::move(handler)(error);
                    });
                });
            },
            asio::use_awaitable, f);
    } else {
        co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::exception_ptr, result_t)>(
            [&pool, ex](auto handler, F fn) {
                asio::post(pool, [handler = std::move(handler), fn = std::move(fn), ex]() mutable {
                    std::exception_ptr error;
                    std::optional<result_t> value;
                    try {
                        value.emplace(fn());
                    } catch (...) {
                        error = std::current_exception();
                    }
                    asio::post(ex, [handler = std::move(handler), error = std::move(error), value = std::move(value)]() mutable {
                        std::move(handler)(error, value ? std::move(*value) : result_t{});
                    });
                });
            },
            asio::use_awaitable, f);
    }
}

}  // namespace subrelay::relay
