/*
 * etcdadm bootstrap (src/bootstrap) as a Promela model for spin: N machines run the
 * first-boot agent; discovery, crashes, lost messages and a replacement act against them.
 * Every state and step is named after its Rust counterpart. Read spec/README.md first.
 *
 * The world (-D switches; defaults in brackets):
 *   N              cluster size, `expected` [3]
 *   REPL           the last machine (the victim) dies for good and is replaced [0]
 *   REUSE          the replacement gets the victim's address (peer URL) [0]
 *   NAMES_BY_ADDR  names come from the address (static, dns), so a replacement at the same
 *                  address is the very same Candidate; else instance ids (aws-asg) [0]
 *   ZOMBIE         the victim may still run after it left the peer set [1]
 *   REPLACE_LATE   the victim dies and leaves only after every machine is READY [0]
 *   AUTH           View.authoritative (aws-asg, remove-departed-members) [1]
 *   MAXCRASH       crash-and-reboot budget; disk survives, memory does not [1]
 *   LOSSY          until the network heals any probe and any call may be lost [1]
 *   FRESH_VIEWS    discovery is never stale (a static list) [0]
 *   FORM_WAITS     membership::form is never interrupted (no crash, no wait_healthy timeout) [0]
 *   STRICT         etcd's --strict-reconfig-check [1]; MAX_LEARNERS etcd's --max-learners [1]
 *   RESTORE        bootstrap.restore-from: a complete set with no running etcd is restored from
 *                  a backup by its first machine alone, the others wait and join it [0]
 *   VICTIM_FIRST   the victim is the first machine (the one that restores) instead of the last [0]
 *   CHECK_S1/S2    check invariant S1 / S2 [1]
 * The fixes F1-F6, on as in the code; 0 restores the earlier protocol (regression cases):
 * FIX_RESUME (F1), FIX_REMOVE (F2), FIX_FORM (F3), FIX_SETTLE (F4), FIX_REUSE (F5),
 * FIX_REACH (F6); see README, "The fixes".
 */
#ifndef N
#define N 3
#endif
#ifndef REPL
#define REPL 0
#endif
#ifndef REUSE
#define REUSE 0
#endif
#ifndef NAMES_BY_ADDR
#define NAMES_BY_ADDR 0
#endif
#ifndef AUTH
#define AUTH 1
#endif
#ifndef MAXCRASH
#define MAXCRASH 1
#endif
#ifndef LOSSY
#define LOSSY 1
#endif
#ifndef FRESH_VIEWS
#define FRESH_VIEWS 0
#endif
#ifndef STRICT
#define STRICT 1
#endif
#ifndef FORM_WAITS
#define FORM_WAITS 0      /* 1: membership::form is never interrupted: no crash while the state file
                             says (Init, Installing), and wait_healthy waits as long as needed */
#endif
#ifndef ZOMBIE
#define ZOMBIE 1          /* 1: the victim may still run after it left the peer set */
#endif
#ifndef FIX_RESUME
#define FIX_RESUME 1      /* fix F1: membership::join resumes an unfinished membership::form and
                             membership::form an unfinished join (phase Installing either way) */
#endif
#ifndef FIX_REMOVE
#define FIX_REMOVE 1      /* fix F2: RemoveStale only from a complete view that lists
                             this machine, and never a member that answers */
#endif
#ifndef FIX_FORM
#define FIX_FORM 1        /* fix F3: a leaderless peer's (serializable) member list
                             decides: it lists this machine as an unstarted voter -> Form
                             exactly that cluster (start the member); otherwise -> Wait */
#endif
#ifndef FIX_SETTLE
#define FIX_SETTLE 1      /* fix F4: every round also probes this machine's own member;
                             with an authoritative set, Member is saved and READY sent only after
                             a round with a complete view listing this machine finds no departed
                             member left */
#endif
#ifndef FIX_REUSE
#define FIX_REUSE 1       /* fix F5: a started member at this machine's own peer URL,
                             while this machine has no data, is a departed predecessor */
#endif
#ifndef FIX_REACH
#define FIX_REACH 1       /* fix F6: Form only when every other peer of the set is
                             reachable (answers, or refuses the connection: up, etcd not started) */
#endif
#ifndef REPLACE_LATE
#define REPLACE_LATE 0    /* 1: the victim dies only after every machine reported READY */
#endif
#ifndef CHECK_S1
#define CHECK_S1 1        /* 0: leave S1 out (to let the checker look for S2 traces) */
#endif
#ifndef CHECK_S2
#define CHECK_S2 1        /* 0: leave S2 out (to let the checker look for S1 traces) */
#endif
#ifndef RESTORE
#define RESTORE 0
#endif
#ifndef VICTIM_FIRST
#define VICTIM_FIRST 0
#endif
#ifndef MAX_LEARNERS
#define MAX_LEARNERS 1    /* etcd --max-learners default */
#endif

#define M       (N + REPL)          /* machines; also the address and candidate slots */
#define VICTIM  (VICTIM_FIRST -> 0 : N - 1)
#define CL      2                   /* at most two distinct complete peer sets exist */

/* ---- addresses and candidates ------------------------------------------------------ */
#define ADDR(k)  ((REUSE && (k) == N) -> VICTIM : (k))               /* machine -> peer URL */
#define CAND(k)  ((REUSE && NAMES_BY_ADDR && (k) == N) -> VICTIM : (k)) /* machine -> Candidate */
#define CADDR(j) ((REUSE && (j) == N) -> VICTIM : (j))               /* Candidate -> peer URL */

/* ---- etcd: clusters and members (cluster.rs MemberInfo) ----------------------------- */
/* mem[c*M + a]: the member with peer URL a in cluster c (1..CL): flags, and in bits 3..4
 * an incarnation that stands for its member id (a re-added URL gets a new id). */
#define FV 1        /* voter */
#define FL 2        /* is_learner */
#define FS 4        /* started(): it published its client URLs */
byte mem[(CL + 1) * M];
#define MEM(c, a)      mem[(c) * M + (a)]
#define PRESENT(c, a)  (MEM(c, a) & (FV | FL))
#define INC(c, a)      (MEM(c, a) >> 3)
byte ctok[CL + 1];                  /* the cluster's initial Candidate set: its token */
bool led[CL + 1];                   /* has a leader now (a quorum of its voters runs) */
bool everled[CL + 1];

/* ---- machines ---------------------------------------------------------------------- */
/* pc: where bootstrap::converge is (names of the Rust steps) */
#define DOWN          0   /* machine off after a crash */
#define MEMBER_UP     1   /* converge: Phase::Member on disk -> phases::start + wait_healthy */
#define ROUND         2   /* converge loop: discovery::discover, probe::probe_all, decide() */
#define FORM          3   /* membership::form: check_existing(Init), state.save (Installing) */
#define FORM_START    4   /*   phases::configure (initial-cluster-state new) + phases::start */
#define FORM_HEALTHY  5   /*   phases::wait_healthy, state.save (Member) */
#define JOIN          6   /* membership::join: check_existing(Join), state.save (Installing) */
#define JOIN_ADD      7   /*   connect_any, members(), find me by peer URL / add_learner, save (Learner) */
#define JOIN_START    8   /*   phases::configure (existing) + phases::start */
#define JOIN_PROMOTE  9   /*   promote (when the member list showed a learner) */
#define JOIN_HEALTHY  10  /*   phases::wait_healthy, state.save (Member) */
#define REMOVE        11  /* Decision::RemoveStale: connect_any + remove(member.id) */
#define READY         12  /* notify::ready: the agent is done */
#define GONE          13  /* the victim: died for good */
#define UNBORN        14  /* the replacement before the group launches it */
#define STEP_CRASH    15  /* (trace labels only) */
#define STEP_ETCD_RESTART 16
#define SETTLE        17  /* F4 only: last rounds of a new member: remove departed members,
                             then state.save (Member) and READY */

/* sf: state.rs State on disk (origin, phase) */
#define SF_NONE     0
#define SF_INIT     1     /* Origin::Init, Phase::Installing */
#define SF_JOIN     2     /* Origin::Join, Phase::Installing */
#define SF_LEARNER  3     /* Origin::Join, Phase::Learner */
#define SF_MEMBER   4     /* Phase::Member */

/* h_dec: this round's decide.rs Decision (a temporary) */
#define WAIT   0
#define DFORM  1
#define DJOIN  2
#define DREM   3

typedef Machine {
    unsigned pc   : 5;
    unsigned up   : 1;   /* powered on */
    unsigned etcd : 1;   /* etcd process running (memory: lost in a crash) */
    unsigned sf   : 3;   /* state file (disk) */
    unsigned data : 2;   /* data directory: cluster whose data it holds, 0 = empty (disk) */
    unsigned en   : 3;   /* etcd.env + unit enabled: 0, or cluster c (new) / 4+c (existing) (disk) */
    unsigned darg : 6;   /* Form: candidate set; RemoveStale: peer URL */
    unsigned dc   : 2;   /* Join/RemoveStale: the cluster */
    unsigned dinc : 2;   /* RemoveStale / promote: member id (incarnation) */
    unsigned jl   : 1;   /* join: the member list showed this machine as a learner */
    unsigned rs   : 1;   /* Restore: FORM restores the backup (memory) */
};
Machine m[M];

/* ---- the world ----------------------------------------------------------------------- */
byte nev;          /* peer-set history: versions 0..N list machines 0..v-1; N+1: the victim
                      left; N+2: the replacement is listed */
bool calm;         /* discovery settled, partitions healed, no more crashes */
byte crashes;
byte restorer = 255;   /* the machine that restored a backup (S6) */
bool settled;      /* the liveness goal holds (see check()) */

#define FINAL      (N + 2 * REPL)
#define ALL_READY  (m[0].pc == READY && (N < 2 || m[1].pc == READY) && (N < 3 || m[2].pc == READY) && \
                    (N < 4 || m[3].pc == READY) && (N < 5 || m[4].pc == READY))
#define VIEW(v)    ((v) <= N -> ((1 << (v)) - 1) : \
                    ((v) == N + 1 -> (((1 << N) - 1) & ~(1 << VICTIM)) : \
                                     ((((1 << N) - 1) & ~(1 << VICTIM)) | (1 << CAND(N)))))
#define DEAD(k)    (m[k].pc == GONE || m[k].pc == UNBORN)
#define RUNS(k, c) (m[k].up && m[k].etcd && m[k].data == (c))

hidden byte h_dec, h_unreach, h_est, h_adopt, h_other, h_vm, h_y, h_c, h_a, h_k, h_v, h_h, h_n, h_best, h_key, h_bkey, h_rc, h_ans, h_va, h_f, h_x;

/* h_x := 1 iff a running etcd at peer URL a is a member of c */
inline runs_in(a, c) {
    h_x = 0; h_k = 0;
    do
    :: h_k < M -> if :: ADDR(h_k) == (a) && RUNS(h_k, c) && PRESENT(c, a) -> h_x = 1 :: else fi; h_k++
    :: else -> break
    od
}

/* etcd's raft, recomputed after every step: leader iff a quorum of voters runs; running
 * members of a led cluster publish (started); a removed member's etcd stops. */
inline raft() {
    h_c = 1;
    do
    :: h_c <= CL ->
        h_v = 0; h_h = 0; h_a = 0;
        do
        :: h_a < M ->
            if
            :: MEM(h_c, h_a) & FV -> h_v++; runs_in(h_a, h_c); h_h = h_h + h_x
            :: else
            fi; h_a++
        :: else -> break
        od;
        led[h_c] = (h_v > 0 && h_h >= h_v / 2 + 1);
        if
        :: led[h_c] ->
            everled[h_c] = 1; h_a = 0;
            do
            :: h_a < M -> runs_in(h_a, h_c); if :: h_x -> MEM(h_c, h_a) = MEM(h_c, h_a) | FS :: else fi; h_a++
            :: else -> break
            od
        :: else
        fi;
        h_c++
    :: else -> break
    od;
    h_k = 0;
    do
    :: h_k < M -> if :: m[h_k].data != 0 && !PRESENT(m[h_k].data, ADDR(h_k)) -> m[h_k].etcd = 0 :: else fi; h_k++
    :: else -> break
    od
}

/* etcd starting (phases::start, systemd at boot, Restart=on-failure); `reach`: whether
 * its own requests to peers get through. With data it ignores etcd.env. Without, `new`
 * bootstraps the initial cluster, but first refuses if a reachable peer lists this member
 * as started (etcd's isMemberBootstrapped); `existing` fetches the cluster from a running
 * member and must find itself listed. */
inline etcd_start(k, reach) {
    if
    :: m[k].data != 0 -> m[k].etcd = PRESENT(m[k].data, ADDR(k)) != 0
    :: m[k].data == 0 && m[k].en != 0 ->
        h_c = m[k].en % 4; h_f = 0; h_a = 0;     /* h_f: a running member of c is reachable */
        do
        :: h_a < M && reach -> if :: h_a != ADDR(k) -> runs_in(h_a, h_c); h_f = h_f | h_x :: else fi; h_a++
        :: else -> break
        od;
        if
        :: m[k].en < 4 && h_f && (MEM(h_c, ADDR(k)) & FS) -> m[k].etcd = 0   /* "already bootstrapped" */
        :: m[k].en < 4 && !(h_f && (MEM(h_c, ADDR(k)) & FS)) ->
            /* S4: a member whose etcd ran never starts again from an empty data dir */
            assert(!(MEM(h_c, ADDR(k)) & FS));                                   /* S4 */
            m[k].data = h_c; m[k].etcd = PRESENT(h_c, ADDR(k)) != 0
        :: m[k].en > 4 && h_f && PRESENT(h_c, ADDR(k)) ->
            assert(!(MEM(h_c, ADDR(k)) & FS));                                   /* S4 */
            m[k].data = h_c; m[k].etcd = 1
        :: m[k].en > 4 && !(h_f && PRESENT(h_c, ADDR(k))) -> m[k].etcd = 0   /* exits */
        fi
    :: else -> skip
    fi
}

/* The invariants (README, "Invariants"), checked after every step; and the liveness goal. */
inline check() {
    /* S1: never two clusters, each led at some time, each with a started member on a live machine */
    h_n = 0; h_c = 1;
    do
    :: h_c <= CL ->
        h_k = 0; h_f = 0;
        do
        :: h_k < M -> if :: !DEAD(h_k) && m[h_k].data == h_c && (MEM(h_c, ADDR(h_k)) & FS) && PRESENT(h_c, ADDR(h_k)) -> h_f = 1 :: else fi; h_k++
        :: else -> break
        od;
        if :: everled[h_c] && h_f -> h_n++ :: else fi;
        h_c++
    :: else -> break
    od;
    assert(!CHECK_S1 || h_n <= 1);                                               /* S1 */
    /* S2: never a voter of a led cluster that its (live) machine cannot start: the machine
     * at its address holds another cluster's data */
    h_c = 1;
    do
    :: h_c <= CL ->
        h_k = 0;
        do
        :: h_k < M ->
            assert(!CHECK_S2 || !(everled[h_c] && !DEAD(h_k) && (MEM(h_c, ADDR(h_k)) & FV) && !(MEM(h_c, ADDR(h_k)) & FS) && m[h_k].data != 0 && m[h_k].data != h_c)); /* S2 */
            h_k++
        :: else -> break
        od;
        h_c++
    :: else -> break
    od;
    /* liveness goal: every live machine's agent is READY, a started voter of one cluster
     * that has no other members (with AUTH=0 a dead victim's member may stay) */
    settled = 0;
    if
    :: calm ->
        h_c = 1;
        do
        :: h_c <= CL ->
            h_f = 1; h_k = 0;
            do
            :: h_k < M ->
                if
                :: !DEAD(h_k) && !(m[h_k].pc == READY && RUNS(h_k, h_c) && MEM(h_c, ADDR(h_k)) % 8 == (FV | FS)) -> h_f = 0
                :: else
                fi; h_k++
            :: else -> break
            od;
            h_a = 0;
            do
            :: h_a < M ->
                if
                :: AUTH && PRESENT(h_c, h_a) ->     /* some live machine has this address */
                    h_x = 0; h_k = 0;
                    do :: h_k < M -> if :: !DEAD(h_k) && ADDR(h_k) == h_a -> h_x = 1 :: else fi; h_k++ :: else -> break od;
                    if :: !h_x -> h_f = 0 :: else fi
                :: else
                fi; h_a++
            :: else -> break
            od;
            if :: h_f -> settled = 1 :: else fi;
            h_c++
        :: else -> break
        od
    :: else
    fi
}

inline after() { raft(); check() }
/* one line per step for replayed traces (spin -t); the verifier ignores printf */
inline trace_step(k, step) {
    printf("m%d %d pc=%d sf=%d data=%d en=%d etcd=%d |", k, step, m[k].pc, m[k].sf, m[k].data, m[k].en, m[k].etcd);
    h_c = 1;
    do
    :: h_c <= CL -> printf(" c%d(led=%d):", h_c, led[h_c]); h_a = 0;
        do :: h_a < M -> printf(" %d", MEM(h_c, h_a)); h_a++ :: else -> break od; h_c++
    :: else -> break
    od;
    printf("\n")
}

/* Bootstrap restarting after a failure (systemd, 15 s later) or a reboot: converge() again. */
#define RESTART(k) m[k].pc = (m[k].sf == SF_MEMBER -> MEMBER_UP : ROUND); FORGET(k)
/* what the agent held in memory only */
#define FORGET(k)  m[k].darg = 0; m[k].dc = 0; m[k].dinc = 0; m[k].jl = 0; m[k].rs = 0
#define HEALTHY(k) (m[k].data != 0 && RUNS(k, m[k].data) && PRESENT(m[k].data, ADDR(k)) && led[m[k].data])
#define NETFAIL    (LOSSY && !calm)
/* state.save (Member) and READY; with F4, first SETTLE (Member saved when it is done) */
#define FINISH(k)  FORGET(k); if :: FIX_SETTLE && AUTH -> m[k].pc = SETTLE :: else -> m[k].sf = SF_MEMBER; m[k].pc = READY fi
/* whether etcd's own requests to its peers are lost this time (local `lost`) */
#define REACH      if :: NETFAIL -> lost = 1 :: true -> lost = 0 fi; skip

#define ESTABLISHED(c) ((MEM(c, 0) & FS) || (M > 1 && (MEM(c, 1) & FS)) || (M > 2 && (MEM(c, 2) & FS)) || \
                        (M > 3 && (MEM(c, 3) & FS)) || (M > 4 && (MEM(c, 4) & FS)) || (M > 5 && (MEM(c, 5) & FS)))
/* F6: some machine at peer URL a is powered on (a probe gets at least a refusal) */
#define HOST_UP(a) (m[a].up || (REPL && REUSE && (a) == VICTIM && m[N].up))
/* F5: the member at this machine's own peer URL was started, but this machine has no data */
#define PREDECESSOR(k, c, a) (FIX_REUSE && (a) == ADDR(k) && (MEM(c, a) & FS) && m[k].data == 0)
/* F4: the cluster still has a member outside this round's view (one that still answers) */
#define OUTSIDE(c) ((PRESENT(c, 0) && !(h_va & 1)) || (M > 1 && PRESENT(c, 1) && !((h_va >> 1) & 1)) || \
                    (M > 2 && PRESENT(c, 2) && !((h_va >> 2) & 1)) || (M > 3 && PRESENT(c, 3) && !((h_va >> 3) & 1)) || \
                    (M > 4 && PRESENT(c, 4) && !((h_va >> 4) & 1)) || (M > 5 && PRESENT(c, 5) && !((h_va >> 5) & 1)))
/* decide.rs decide(), on the snapshot `vm` (a Candidate mask) and the probes not `lost` */
inline decide(k, vm, lost, self) {
    /* probe::probe_all: a peer answers as a member of a running cluster iff its etcd runs
     * as a member of a cluster that has a leader (Probe::Member with leader != 0) */
    h_rc = 0; h_ans = 0; h_va = 0; h_n = 0; h_a = 0; h_est = 0; h_adopt = 0; h_other = 0; h_unreach = 0;
    do
    :: h_a < M ->
        if
        :: (vm >> h_a) & 1 ->
            h_n++; h_va = h_va | (1 << CADDR(h_a));
            if
            :: h_a != CAND(k) && (((lost >> h_a) & 1) || !HOST_UP(CADDR(h_a))) -> h_unreach = 1
            :: else
            fi;
            if
            :: (h_a != CAND(k) || self) && !((lost >> h_a) & 1) ->
                h_c = 1;
                do
                :: h_c <= CL -> h_y = CADDR(h_a); runs_in(h_y, h_c);
                    if :: h_x && led[h_c] -> h_rc = h_rc | (1 << h_c); h_ans = h_ans | (1 << h_y) :: else fi;
                    /* F3: what a leaderless member's (serializable) member list shows */
                    if
                    :: h_x && !led[h_c] && ((ctok[h_c] >> CAND(k)) & 1) && MEM(h_c, ADDR(k)) % 8 == FV ->
                        if :: h_adopt == 0 || h_adopt == h_c -> h_adopt = h_c :: else -> h_other = 1 fi
                    :: h_x && !led[h_c] && !(((ctok[h_c] >> CAND(k)) & 1) && MEM(h_c, ADDR(k)) % 8 == FV) ->
                        if :: ESTABLISHED(h_c) -> h_est = 1 :: else -> h_other = 1 fi
                    :: else
                    fi;
                    h_c++
                :: else -> break
                od
            :: else
            fi
        :: else
        fi; h_a++
    :: else -> break
    od;
    h_dec = WAIT; m[k].darg = 0; m[k].dc = 0; m[k].dinc = 0; m[k].rs = 0;
    if
    :: h_rc == 0 ->                                   /* form_or_wait */
        if
        /* F3: start this machine's unstarted member of a leaderless cluster; otherwise wait */
        :: FIX_FORM && !h_est && !h_other && h_adopt != 0 && ((vm >> CAND(k)) & 1) -> h_dec = DFORM; m[k].darg = ctok[h_adopt]
        :: FIX_FORM && (h_est || h_other)
        :: !(FIX_FORM && (h_est || h_adopt != 0 || h_other)) && ((vm >> CAND(k)) & 1) && h_n == N && !(FIX_REACH && h_unreach) ->
            if
            :: !RESTORE -> h_dec = DFORM; m[k].darg = vm
            :: RESTORE ->
                /* R: the first of the sorted set (lowest peer URL) restores alone; the
                 * others wait (to join it once it runs) */
                h_best = 255; h_a = 0;
                do
                :: h_a < M -> if :: ((vm >> h_a) & 1) && (h_best == 255 || CADDR(h_a) < CADDR(h_best)) -> h_best = h_a :: else fi; h_a++
                :: else -> break
                od;
                if
                :: h_best == CAND(k) -> h_dec = DFORM; m[k].darg = 1 << CAND(k); m[k].rs = 1
                :: else
                fi
            fi
        :: else                                       /* not in the set / n < or > expected */
        fi
    :: h_rc == 2 || h_rc == 4 ->                      /* one running cluster */
        h_c = h_rc / 2;
        h_dec = DJOIN; m[k].dc = h_c;
        if
        :: AUTH && !(FIX_REMOVE && !(((vm >> CAND(k)) & 1) && h_n == N)) ->   /* removable_stale_member */
            h_best = 255; h_bkey = 255; h_a = 0;
            do
            :: h_a < M ->
                if
                :: PRESENT(h_c, h_a) && (!((h_va >> h_a) & 1) || PREDECESSOR(k, h_c, h_a)) ->
                    /* F2: a stale member that answers a probe of its client URL stays */
                    if :: FIX_REMOVE -> runs_in(h_a, h_c); h_x = h_x && !((lost >> h_a) & 1) :: else -> h_x = 0 fi
                :: else -> h_x = 1
                fi;
                if
                :: !h_x && PRESENT(h_c, h_a) && (!((h_va >> h_a) & 1) || PREDECESSOR(k, h_c, h_a)) ->
                    /* sort key (!is_learner, started(), id); id order = address order */
                    h_key = ((MEM(h_c, h_a) & FL) -> 0 : 2) + ((MEM(h_c, h_a) & FS) -> 1 : 0);
                    if :: h_key < h_bkey -> h_bkey = h_key; h_best = h_a :: else fi
                :: else
                fi; h_a++
            :: else -> break
            od;
            if
            :: h_best != 255 && (MEM(h_c, h_best) & FL) ->
                h_dec = DREM; m[k].darg = h_best; m[k].dinc = INC(h_c, h_best)
            :: h_best != 255 && !(MEM(h_c, h_best) & FL) ->
                h_v = 0; h_h = 0; h_a = 0;
                do
                :: h_a < M ->
                    if
                    :: MEM(h_c, h_a) & FV -> h_v++;
                        if :: h_a != h_best && ((h_ans >> h_a) & 1) -> h_h++ :: else fi
                    :: else
                    fi; h_a++
                :: else -> break
                od;
                if
                :: h_h >= h_v / 2 + 1 -> h_dec = DREM; m[k].darg = h_best; m[k].dinc = INC(h_c, h_best)
                :: else -> h_dec = WAIT; m[k].darg = 0; m[k].dc = 0; m[k].dinc = 0   /* "removing it needs q healthy voters" */
                fi
            :: else
            fi
        :: else
        fi
    :: else                                           /* two clusters: refuse to act */
    fi
}

/* the cluster whose initial Candidate set is s, created on first use */
inline cluster_of(s) {
    h_c = 1;
    do
    :: h_c <= CL && ctok[h_c] == s -> break
    :: h_c <= CL && ctok[h_c] == 0 ->
        ctok[h_c] = s; h_a = 0;
        do
        :: h_a < M -> if :: (s >> h_a) & 1 -> MEM(h_c, CADDR(h_a)) = FV :: else fi; h_a++
        :: else -> break
        od;
        break
    :: h_c <= CL && ctok[h_c] != 0 && ctok[h_c] != s -> h_c++
    :: else -> assert(false)      /* more distinct complete peer sets than CL */
    od
}

proctype Machine_(byte k) {
    byte ver, lost, j;
end:
    do
    /* --- bootstrap::converge, Phase::Member: phases::start + wait_healthy -------------- */
    :: atomic { m[k].pc == MEMBER_UP ->
        REACH;
        d_step { if :: !m[k].etcd -> etcd_start(k, !lost) :: else fi; lost = 0;
                 raft(); if :: HEALTHY(k) -> m[k].pc = READY :: else fi; check(); trace_step(k, MEMBER_UP) } }
    /* --- one round: discovery, probes, decide() ---------------------------------------- */
    :: atomic { m[k].pc == ROUND ->
        /* discovery::discover: the current peer set, or before it settles any earlier one */
        if
        :: calm || FRESH_VIEWS -> ver = nev
        :: else -> select(ver : 0 .. nev)
        fi;
        /* probe::probe_all: before partitions heal, any probe may be lost (Probe::Silent) */
        lost = 0;
        if
        :: LOSSY && !calm -> j = 0;
            do
            :: j < M -> if :: j != CAND(k) && (FIX_REMOVE || ((VIEW(ver) >> j) & 1)) -> lost = lost | (1 << j) :: skip fi; j++
            :: else -> break
            od
        :: else
        fi;
        skip;
        d_step {
            h_vm = VIEW(ver);
            decide(k, h_vm, lost, FIX_SETTLE);
            printf("m%d decide: view %d lost %d -> %d %d (cluster %d)\n", k, h_vm, lost, h_dec, m[k].darg, m[k].dc);
            m[k].pc = (h_dec == WAIT -> ROUND : (h_dec == DFORM -> FORM : (h_dec == DJOIN -> JOIN : REMOVE)));
            ver = 0; lost = 0; j = 0
        } }
    /* --- F4: settle (proposed): the same round, this member's own probe included ------ */
    :: atomic { m[k].pc == SETTLE ->
        if
        :: calm || FRESH_VIEWS -> ver = nev
        :: else -> select(ver : 0 .. nev)
        fi;
        lost = 0;
        if
        :: LOSSY && !calm -> j = 0;
            do
            :: j < M -> if :: j != CAND(k) -> lost = lost | (1 << j) :: skip fi; j++
            :: else -> break
            od
        :: else
        fi;
        skip;
        d_step {
            h_vm = VIEW(ver);
            decide(k, h_vm, lost, 1);
            printf("m%d settle: view %d lost %d -> %d %d (cluster %d)\n", k, h_vm, lost, h_dec, m[k].darg, m[k].dc);
            if
            :: h_dec == DREM -> m[k].pc = REMOVE
            :: h_dec == DJOIN && ((h_vm >> CAND(k)) & 1) && h_n == N && !OUTSIDE(m[k].dc) -> m[k].sf = SF_MEMBER; m[k].pc = READY; FORGET(k)
            :: else -> FORGET(k)                      /* wait and look again */
            fi;
            ver = 0; lost = 0; j = 0; check()
        } }
    /* --- membership::form ---------------------------------------------------------------------- */
    :: atomic { m[k].pc == FORM ->
        d_step {
            if
            :: (m[k].sf == SF_JOIN && !FIX_RESUME) || m[k].sf == SF_LEARNER -> RESTART(k)   /* bail: set up by join */
            :: m[k].sf == SF_NONE && m[k].data != 0 -> RESTART(k)            /* bail: foreign data */
            :: else -> m[k].sf = SF_INIT; m[k].pc = FORM_START
            fi; check(); trace_step(k, FORM) } }
    :: atomic { m[k].pc == FORM_START ->
        REACH;
        d_step {
            if
            :: m[k].rs ->
                /* a restore: snapshot::prepare + commit into the empty data directory */
                h_k = 0;
                do
                :: h_k < M ->
                    /* S5: no other live machine holds member data */
                    assert(h_k == k || DEAD(h_k) || m[h_k].data == 0);                /* S5 */
                    h_k++
                :: else -> break
                od;
                /* S6: one machine restores (another only once it is dead) */
                assert(restorer == 255 || restorer == k || DEAD(restorer));            /* S6 */
                restorer = k
            :: else
            fi;
            cluster_of(m[k].darg); m[k].en = h_c; m[k].darg = 0;
            if :: !m[k].etcd -> etcd_start(k, !lost) :: else fi; lost = 0;
            m[k].pc = FORM_HEALTHY; after(); trace_step(k, FORM_START) } }
    :: atomic { m[k].pc == FORM_HEALTHY ->
        d_step {
            if
            :: HEALTHY(k) -> FINISH(k)
            :: !HEALTHY(k) && !FORM_WAITS -> RESTART(k)     /* wait_healthy timed out */
            :: else                                          /* FORM_WAITS: still waiting */
            fi; check(); trace_step(k, FORM_HEALTHY) } }
    /* --- membership::join ---------------------------------------------------------------------- */
    :: atomic { m[k].pc == JOIN ->
        d_step {
            if
            :: m[k].sf == SF_INIT && !FIX_RESUME -> RESTART(k)   /* bail: "set up by `etcdadm init`" */
            :: m[k].sf == SF_NONE && m[k].data != 0 -> RESTART(k)
            :: else -> if :: m[k].sf == SF_NONE || m[k].sf == SF_INIT -> m[k].sf = SF_JOIN :: else fi; m[k].pc = JOIN_ADD
            fi; check(); trace_step(k, JOIN) } }
    :: atomic { m[k].pc == JOIN_ADD ->
        if
        :: NETFAIL -> RESTART(k); trace_step(k, JOIN_ADD)            /* lost: cannot reach the cluster */
        :: true ->
            d_step {
                h_c = m[k].dc; h_a = ADDR(k);
                if
                :: !led[h_c] -> RESTART(k)                /* members() needs a leader: times out */
                :: led[h_c] && PRESENT(h_c, h_a) && (MEM(h_c, h_a) & FS) && m[k].data == 0 ->
                    RESTART(k)                            /* bail: "its data is lost" */
                :: led[h_c] && PRESENT(h_c, h_a) && !((MEM(h_c, h_a) & FS) && m[k].data == 0) ->
                    m[k].jl = (MEM(h_c, h_a) & FL) != 0; m[k].dinc = INC(h_c, h_a); m[k].pc = JOIN_START
                :: led[h_c] && !PRESENT(h_c, h_a) && m[k].data != 0 -> RESTART(k)   /* bail: stale data */
                :: led[h_c] && !PRESENT(h_c, h_a) && m[k].data == 0 ->
                    /* add_learner; etcd refuses past --max-learners */
                    h_n = 0; h_v = 0;
                    do :: h_v < M -> if :: MEM(h_c, h_v) & FL -> h_n++ :: else fi; h_v++ :: else -> break od;
                    if
                    :: h_n >= MAX_LEARNERS -> RESTART(k)
                    :: else ->
                        MEM(h_c, h_a) = FL | (((INC(h_c, h_a) + 1) % 4) << 3);
                        m[k].jl = 1; m[k].dinc = INC(h_c, h_a); m[k].pc = JOIN_START
                    fi
                fi;
                if :: m[k].pc == JOIN_START && m[k].sf == SF_JOIN -> m[k].sf = SF_LEARNER :: else fi;
                after(); trace_step(k, JOIN_ADD)
            }
        fi }
    :: atomic { m[k].pc == JOIN_START ->
        REACH;
        d_step {
            m[k].en = 4 + m[k].dc;
            if :: !m[k].etcd -> etcd_start(k, !lost) :: else fi; lost = 0;
            if :: m[k].jl -> m[k].pc = JOIN_PROMOTE :: else -> m[k].pc = JOIN_HEALTHY; FORGET(k) fi; after(); trace_step(k, JOIN_START) } }
    :: atomic { m[k].pc == JOIN_PROMOTE ->
        if
        :: NETFAIL -> RESTART(k); trace_step(k, JOIN_PROMOTE)            /* lost: the call fails */
        :: true ->
            d_step {
                h_c = m[k].dc; h_a = ADDR(k);
                /* etcd: the learner must be caught up; with strict reconfig, started voters
                 * must stay a quorum of the grown voter set */
                h_v = 1; h_h = 1; h_n = 0;
                do
                :: h_n < M -> if :: MEM(h_c, h_n) & FV -> h_v++; if :: MEM(h_c, h_n) & FS -> h_h++ :: else fi :: else fi; h_n++
                :: else -> break
                od;
                if
                :: PRESENT(h_c, h_a) && INC(h_c, h_a) == m[k].dinc && (MEM(h_c, h_a) & FL) && led[h_c] && RUNS(k, h_c) && (!STRICT || h_h >= h_v / 2 + 1) ->
                    MEM(h_c, h_a) = (MEM(h_c, h_a) & ~FL) | FV; m[k].pc = JOIN_HEALTHY; FORGET(k)
                :: else -> RESTART(k)                     /* not found / not caught up: times out */
                fi;
                after(); trace_step(k, JOIN_PROMOTE)
            }
        fi }
    :: atomic { m[k].pc == JOIN_HEALTHY ->
        d_step {
            if
            :: HEALTHY(k) && (MEM(m[k].data, ADDR(k)) & FV) -> FINISH(k)
            :: else -> RESTART(k)
            fi; check(); trace_step(k, JOIN_HEALTHY) } }
    /* --- Decision::RemoveStale -------------------------------------------------------- */
    :: atomic { m[k].pc == REMOVE ->
        if
        :: NETFAIL -> RESTART(k); trace_step(k, REMOVE)            /* lost: the call fails */
        :: true ->
            d_step {
                h_c = m[k].dc; h_a = m[k].darg;
                /* running voters, voters (h_h, h_v) and whether the target is a running voter (h_f) */
                h_v = 0; h_h = 0; h_f = 0; h_n = 0; h_best = 0;
                do
                :: h_n < M ->
                    if
                    :: MEM(h_c, h_n) & FV -> h_v++; runs_in(h_n, h_c); h_h = h_h + h_x;
                        if :: h_n == h_a -> h_f = h_x + 1 :: else fi;
                        if :: h_n != h_a && (MEM(h_c, h_n) & FS) -> h_best++ :: else fi
                    :: else
                    fi; h_n++
                :: else -> break
                od;
                if
                :: !led[h_c] || !PRESENT(h_c, h_a) || INC(h_c, h_a) != m[k].dinc -> RESTART(k)   /* no leader / NotFound */
                :: else ->
                    if
                    /* etcd strict reconfig: a voter goes only if the started others stay a
                     * quorum and, if it runs, the other running voters do too */
                    :: STRICT && h_f != 0 && (h_best < (h_v - 1) / 2 + 1 || (h_f == 2 && h_h - 1 < (h_v - 1) / 2 + 1)) ->
                        RESTART(k)
                    :: else ->
                        /* S3: a removal never takes a quorate cluster below quorum */
                        assert(!(h_h >= h_v / 2 + 1 && h_f != 0 && h_h - (h_f == 2 -> 1 : 0) < (h_v - 1) / 2 + 1)); /* S3 */
                        MEM(h_c, h_a) = MEM(h_c, h_a) & ~7;
                        m[k].pc = ROUND; FORGET(k)
                    fi
                fi;
                after(); trace_step(k, REMOVE)
            }
        fi }
    /* --- the real world --------------------------------------------------------------- */
    :: atomic { m[k].up && !calm && crashes < MAXCRASH && m[k].pc != GONE && m[k].pc != UNBORN && (!FORM_WAITS || m[k].sf != SF_INIT) ->
        d_step { crashes++; m[k].up = 0; m[k].etcd = 0; m[k].pc = DOWN; FORGET(k); printf("m%d crashes\n", k); after(); trace_step(k, STEP_CRASH) } }
    :: atomic { m[k].pc == DOWN ->                         /* reboot: systemd starts enabled etcd */
        REACH;
        d_step { m[k].up = 1; if :: m[k].en != 0 -> etcd_start(k, !lost) :: else fi; lost = 0; RESTART(k); after(); trace_step(k, DOWN) } }
    :: atomic { m[k].up && m[k].en != 0 && !m[k].etcd && m[k].pc != DOWN ->  /* Restart=on-failure */
        REACH;
        d_step { etcd_start(k, !lost); lost = 0; after(); trace_step(k, STEP_ETCD_RESTART) } }
    od
}

/* Discovery's truth, the victim's death, the replacement's launch, and the moment the
 * world calms down (discovery settled, partitions healed, no more crashes). */
active proctype World() {
    byte k;
    atomic {
        do
        :: k < N -> m[k].up = 1; m[k].pc = ROUND; k++
        :: else -> break
        od;
        if :: REPL -> m[N].pc = UNBORN :: else fi;
        k = 0;
        do
        :: k < M -> run Machine_(k); k++
        :: else -> k = 0; break
        od
    };
end:
    do
    /* discovery lists one more machine of the group (it fills over seconds; DNS lags) */
    :: atomic { nev < N -> nev++; printf("world: peer set version %d\n", nev); after() }
    /* the victim leaves the peer set */
    :: atomic { REPL && nev == N && (ZOMBIE || m[VICTIM].pc == GONE) &&
                (!REPLACE_LATE || ALL_READY || m[VICTIM].pc == GONE) ->
        nev++; printf("world: victim m%d leaves the peer set\n", VICTIM); after() }
    /* the group launches a replacement (reusing the address only once the victim is gone) */
    :: atomic { REPL && nev == N + 1 && (!REUSE || m[VICTIM].pc == GONE) ->
        d_step { nev++; m[N].up = 1; m[N].pc = ROUND;
                 printf("world: replacement m%d launched at address %d\n", N, ADDR(N)); after() } }
    /* the victim dies for good (its disk with it: nothing reads its fields again) */
    :: atomic { REPL && m[VICTIM].pc != GONE && (!REPLACE_LATE || ALL_READY) ->
        d_step { m[VICTIM].up = 0; m[VICTIM].etcd = 0; m[VICTIM].pc = GONE; FORGET(VICTIM);
                 m[VICTIM].sf = 0; m[VICTIM].data = 0; m[VICTIM].en = 0;
                 printf("world: victim m%d dies\n", VICTIM); after() } }
    /* discovery settled, partitions healed, no more crashes */
    :: atomic { !calm && nev == FINAL && (!REPL || m[VICTIM].pc == GONE) -> calm = 1; printf("world: calm\n"); after() }
    od
}

/* liveness: once the world is calm, every machine ends a started voter of the one cluster */
ltl live { [] (calm -> <> settled) }
