#!/usr/bin/env escript
%%! -sname noex_bench_a@localhost +S 2:2 -setcookie noex_bench
%% The Erlang/OTP side of the noex side-by-side benchmark (bench/src/erlang.rs runs it).
%%
%% This node (A) starts a peer node (B) on this host with `peer`, both with 2 scheduler
%% threads (+S 2:2), connected by Erlang distribution over TCP on 127.0.0.1. B runs the
%% gen_servers of noex_bench_srv.erl (compiled here and loaded on B); this escript's main
%% process is the caller / sender on A. Once B is up it prints `READY`, then runs one
%% repetition per command line read from stdin (`call`, `cast16`, `cast1k`, `big`), so that
%% the Rust side can interleave its repetitions with the other libraries'; each repetition
%% prints one line per figure and then `DONE`:
%%   RESULT <key> <value>
%% At the end of stdin it stops B and exits.
%%
%% usage: escript noex_bench.escript CALLS WARMUP CASTS16 CASTS1K BIGSIZE
-mode(compile).

main([Calls, Warmup, Casts16, Casts1k, BigSize]) ->
    [C, W, S, L, B] = [list_to_integer(X) || X <- [Calls, Warmup, Casts16, Casts1k, BigSize]],
    Dir = filename:dirname(escript:script_name()),
    {ok, Mod, Bin} = compile:file(filename:join(Dir, "noex_bench_srv.erl"), [binary]),
    {ok, Peer, Node} = peer:start_link(#{name => noex_bench_b, host => "localhost",
                                         args => ["+S", "2:2", "-setcookie", "noex_bench"]}),
    {module, Mod} = erpc:call(Node, code, load_binary, [Mod, "noex_bench_srv.erl", Bin]),
    ok = erpc:call(Node, noex_bench_srv, start, []),
    Echo = {noex_bench_echo, Node},
    Sink = {noex_bench_sink, Node},
    io:format("READY~n"),
    commands(Echo, Sink, {C, W, S, L, B}),
    peer:stop(Peer),
    ok.

commands(Echo, Sink, Counts) ->
    case io:get_line("") of
        eof -> ok;
        {error, _} -> ok;
        Line ->
            run(string:trim(Line), Echo, Sink, Counts),
            io:format("DONE~n"),
            commands(Echo, Sink, Counts)
    end.

run("call", Echo, _, {C, W, _, _, _}) ->
    T = sorted_calls(Echo, W, C),
    result("call-p50", percentile(T, 50) / 1000),
    result("call-p99", percentile(T, 99) / 1000);
run("cast16", _, Sink, {_, _, S, _, _}) ->
    casts_result(Sink, S, 16, "cast16", "cast16-mb");
run("cast1k", _, Sink, {_, _, _, L, _}) ->
    casts_result(Sink, L, 1024, "cast1k", "cast1k-mb");
run("big", Echo, Sink, {_, _, _, _, B}) ->
    {T, Took} = big(Echo, Sink, B),
    result("big-p50", percentile(T, 50) / 1000),
    result("big-p99", percentile(T, 99) / 1000),
    result("big-max", percentile(T, 100) / 1000),
    result("big-transfer", Took / 1.0e6);
run(Other, _, _, _) ->
    io:format("unknown command ~s~n", [Other]).

casts_result(Sink, Count, Size, Key, MbKey) ->
    Rate = Count / casts(Sink, Count, Size),
    result(Key, Rate),
    result(MbKey, Rate * Size / 1.0e6).

now_ns() -> erlang:monotonic_time(nanosecond).

%% Warmup untimed calls, then Calls timed ones (ns, sorted).
sorted_calls(Echo, Warmup, Calls) ->
    [Warmup = gen_server:call(Echo, {echo, Warmup}) || _ <- lists:seq(1, Warmup)],
    lists:sort([time_call(Echo, I) || I <- lists:seq(1, Calls)]).

time_call(Echo, I) ->
    T0 = now_ns(),
    I = gen_server:call(Echo, {echo, I}),
    now_ns() - T0.

%% Count casts of Size bytes, then a call ordered behind them; seconds.
casts(Sink, Count, Size) ->
    Payload = binary:copy(<<7>>, Size),
    T0 = now_ns(),
    cast_loop(Sink, Payload, Count),
    Count = gen_server:call(Sink, take_count, infinity),
    (now_ns() - T0) / 1.0e9.

cast_loop(_, _, 0) -> ok;
cast_loop(Sink, Payload, N) ->
    gen_server:cast(Sink, {take, Payload}),
    cast_loop(Sink, Payload, N - 1).

%% One large call in flight from its own process; small calls meanwhile (ns, sorted), and
%% the large call's time from send to reply (ns).
big(Echo, Sink, Size) ->
    Payload = binary:copy(<<16#5a>>, Size),
    Self = self(),
    T0 = now_ns(),
    spawn_link(fun() ->
                       Size = gen_server:call(Sink, {big, Payload}, infinity),
                       Self ! {big_done, now_ns() - T0}
               end),
    small_calls(Echo, 0, []).

small_calls(Echo, I, Acc) ->
    receive
        {big_done, Took} -> {lists:sort(Acc), Took}
    after 0 ->
            small_calls(Echo, I + 1, [time_call(Echo, I) | Acc])
    end.

percentile([], _) -> 0;
percentile(Sorted, P) ->
    N = length(Sorted),
    Rank = max(1, min(N, ceil(P / 100 * N))),
    lists:nth(Rank, Sorted).

result(Key, Value) ->
    io:format("RESULT ~s ~.6f~n", [Key, float(Value)]).
