%% The servers of the Erlang/OTP side of the noex side-by-side benchmark: an echo
%% gen_server and a sink gen_server, both registered on the node that runs start/0.
-module(noex_bench_srv).
-behaviour(gen_server).

-export([start/0, init/1, handle_call/3, handle_cast/2]).

start() ->
    {ok, _} = gen_server:start({local, noex_bench_echo}, ?MODULE, echo, []),
    {ok, _} = gen_server:start({local, noex_bench_sink}, ?MODULE, sink, []),
    ok.

init(echo) -> {ok, echo};
init(sink) -> {ok, 0}.

%% echo: answers with its argument.
handle_call({echo, Value}, _From, echo) ->
    {reply, Value, echo};
%% sink: the count of `take` casts since the last `take_count`.
handle_call(take_count, _From, Taken) ->
    {reply, Taken, 0};
%% sink: the large message, answered with its size once handled.
handle_call({big, Payload}, _From, Taken) ->
    {reply, byte_size(Payload), Taken}.

handle_cast({take, Payload}, Taken) when is_binary(Payload) ->
    {noreply, Taken + 1}.
