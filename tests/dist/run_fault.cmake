# A rank that fails inside a step ends every rank, non-zero, within 30 seconds, with its message.
# -DDRIVER=<latent_dist_fault> -DMPIRUN=<mpirun and its options, a list>
string(TIMESTAMP t0 "%s")
execute_process(COMMAND ${MPIRUN} -np 2 ${DRIVER} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err TIMEOUT 90)
string(TIMESTAMP t1 "%s")
math(EXPR took "${t1} - ${t0}")
if(rc EQUAL 0 OR took GREATER 30)
  message(FATAL_ERROR "a rank failing in a step gave status ${rc} after ${took} s: ${out} ${err}")
endif()
string(FIND "${err}" "latent [rank 1 of 2]: [driver] a step failed on purpose" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the failing rank's message is missing: ${err}")
endif()
message(STATUS "the job ended with status ${rc} after ${took} s")

# Ranks whose all-reduces differ in length: MPI's error is reported by latent, naming the call, and
# the job ends.
execute_process(COMMAND ${MPIRUN} -np 2 ${DRIVER} mismatch RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err TIMEOUT 90)
string(FIND "${err}" "[dist] MPI_Allreduce failed: " at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "all-reduces of other lengths gave status ${rc} without latent's error: ${out} ${err}")
endif()

# The exception leaves dist::Session's scope on rank 1 (caught outside it, the program returning
# 0) while rank 0 waits in an all-reduce: the job still ends, non-zero, within 30 seconds, with the
# handler's message.
string(TIMESTAMP t0 "%s")
execute_process(COMMAND ${MPIRUN} -np 2 ${DRIVER} escape RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err TIMEOUT 90)
string(TIMESTAMP t1 "%s")
math(EXPR took "${t1} - ${t0}")
string(FIND "${err}" "caught outside the session: [driver] a step failed on purpose" at)
string(FIND "${err}" "an exception left dist::Session on this rank" said)
if(rc EQUAL 0 OR took GREATER 30 OR at EQUAL -1 OR said EQUAL -1)
  message(FATAL_ERROR "an exception leaving the session gave status ${rc} after ${took} s: ${out} ${err}")
endif()

# Rank 1 catches the exception inside the Session and returns normally while rank 0 waits in an
# all-reduce: rank 1's Session waits at the end, says why, and ends the job after
# LATENT_DIST_END_TIMEOUT (3 s here), non-zero, instead of hanging in MPI_Finalize.
set(ENV{LATENT_DIST_END_TIMEOUT} 3)  # the ranks on this machine inherit the environment
string(TIMESTAMP t0 "%s")
execute_process(COMMAND ${MPIRUN} -np 2 ${DRIVER} return RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err TIMEOUT 90)
string(TIMESTAMP t1 "%s")
unset(ENV{LATENT_DIST_END_TIMEOUT})
math(EXPR took "${t1} - ${t0}")
string(FIND "${err}" "caught inside the session: [driver] a step failed on purpose" at)
string(FIND "${err}" "latent [rank 1 of 2]: waiting at the end for the other ranks" said)
string(FIND "${err}" "did not reach the end within LATENT_DIST_END_TIMEOUT=3 s" ended)
if(rc EQUAL 0 OR took GREATER 30 OR at EQUAL -1 OR said EQUAL -1 OR ended EQUAL -1)
  message(FATAL_ERROR "a rank returning normally while another waits gave status ${rc} after ${took} s: ${out} ${err}")
endif()

# Rank 1 stops inside a step while rank 0 waits in the all-reduce: rank 0 says it still waits
# halfway, and its watchdog ends the job after LATENT_DIST_TIMEOUT (3 s here), non-zero, saying
# what it waited in, once the program's last act (dist::on_watchdog) has run; no hang.
set(ENV{LATENT_DIST_TIMEOUT} 3)
string(TIMESTAMP t0 "%s")
execute_process(COMMAND ${MPIRUN} -np 2 ${DRIVER} stall RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err TIMEOUT 90)
string(TIMESTAMP t1 "%s")
unset(ENV{LATENT_DIST_TIMEOUT})
math(EXPR took "${t1} - ${t0}")
string(REGEX MATCH "latent \\[rank 0 of 2\\]: waited [0-9]+ s in an all-reduce of [0-9]+ values, which every rank must join \\(LATENT_DIST_TIMEOUT=3 s\\)" said "${err}")
string(FIND "${err}" "the program's last act: waited" last)
# Halfway, the waiting rank said so (the stopped one, which waits in nothing, did not).
string(FIND "${err}" "latent [rank 0 of 2]: still waiting after 1.5 s in an all-reduce of" told)
string(FIND "${err}" "latent [rank 1 of 2]: still waiting" told_by_1)
if(rc EQUAL 0 OR took GREATER 30 OR NOT said OR last EQUAL -1 OR told EQUAL -1
   OR NOT told_by_1 EQUAL -1)
  message(FATAL_ERROR "a rank stopping while another waits gave status ${rc} after ${took} s: ${out} ${err}")
endif()

# The program's last act hangs (a file system that no longer answers): the job ends 60 s later
# all the same, saying so.
set(ENV{LATENT_DIST_TIMEOUT} 2)
string(TIMESTAMP t0 "%s")
execute_process(COMMAND ${MPIRUN} -np 2 ${DRIVER} stall-hang RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err TIMEOUT 150)
string(TIMESTAMP t1 "%s")
unset(ENV{LATENT_DIST_TIMEOUT})
math(EXPR took "${t1} - ${t0}")
string(FIND "${err}" "the program's last act begins" began)
string(FIND "${err}" "the program's last act (dist::on_watchdog) did not end within 60 s" said)
if(rc EQUAL 0 OR took GREATER 100 OR began EQUAL -1 OR said EQUAL -1)
  message(FATAL_ERROR "a last act that hangs gave status ${rc} after ${took} s: ${out} ${err}")
endif()
